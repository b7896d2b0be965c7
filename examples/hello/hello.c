/* hello: the static program of examples/hello.himg.
 * Prints a greeting from $GREETING, who it runs as, and the first line of /etc/hello.conf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *greeting = getenv("GREETING");
    printf("%s\n", greeting ? greeting : "hello");
    printf("uid=%u gid=%u\n", (unsigned)getuid(), (unsigned)getgid());
    FILE *conf = fopen("/etc/hello.conf", "r");
    if (conf) {
        char line[256];
        if (fgets(line, sizeof line, conf)) {
            printf("conf: %s", line);
            if (line[strlen(line) - 1] != '\n') putchar('\n');
        }
        fclose(conf);
    }
    for (int i = 1; i < argc; i++) printf("arg: %s\n", argv[i]);
    return 0;
}
