/* A hostile "PKCS#11 module": its constructor runs at dlopen, before any
 * function is called, and leaves a marker file next to itself saying who
 * loaded it. The security tests assert this file never appears where ukey
 * must refuse the module, and appears where the attack would work. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void pwn(void)
{
    Dl_info info;
    if (!dladdr((void*)&pwn, &info) || !info.dli_fname)
        return;
    char marker[4096];
    snprintf(marker, sizeof marker, "%s.marker", info.dli_fname);
    int fd = open(marker, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    char line[128];
    int n = snprintf(line, sizeof line, "loaded uid=%u euid=%u\n", (unsigned)getuid(), (unsigned)geteuid());
    if (n > 0 && write(fd, line, (size_t)n) < 0) {
    }
    close(fd);
}
