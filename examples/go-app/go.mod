module himg.example/greeter-go

go 1.24

require golang.org/x/text v0.0.0

// The module's source comes from Debian's golang-golang-x-text-dev, installed in the toolchain
// image (verified from the archive signature): no module proxy is needed to build.
replace golang.org/x/text => /usr/share/gocode/src/golang.org/x/text
