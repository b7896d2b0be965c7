// greeter-go: the Go example of examples/go-app.himg. It names a language tag in English with
// golang.org/x/text, a module taken from Debian's golang-golang-x-text-dev package.
package main

import (
	"fmt"
	"os"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

func main() {
	name := "fr-CA"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	tag, err := language.Parse(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "greeter-go:", err)
		os.Exit(2)
	}
	fmt.Printf("hello from go: %s is %s\n", tag, display.English.Tags().Name(tag))
}
