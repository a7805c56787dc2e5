/* cli_share.c - the share folder of the command line (see cli_share.h). */
#include "cli_share.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef SIO_SOURCE_DIR
#define SIO_SOURCE_DIR ""
#endif

/* The file whose presence marks a share folder. */
#define SHARE_MARK "lua/sio/testing.lua"

int sio_cli_exe_path(char *exe, char *dir, size_t n) {
    ssize_t len = readlink("/proc/self/exe", exe, n - 1);
    if (len <= 0 || (size_t)len >= n - 1) {
        fprintf(stderr, "sio-orchestrator: cannot find this executable: %s\n",
                len <= 0 ? strerror(errno) : "path too long");
        return -1;
    }
    exe[len] = '\0';
    memcpy(dir, exe, (size_t)len + 1);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    return 0;
}

static int has_mark(const char *dir) {
    char p[PATH_MAX];
    return (size_t)snprintf(p, sizeof p, "%s/%s", dir, SHARE_MARK) < sizeof p &&
           access(p, R_OK) == 0;
}

int sio_cli_share_dir(const char *who, char *out, size_t n) {
    char exe[PATH_MAX], dir[PATH_MAX], installed[PATH_MAX];
    if (sio_cli_exe_path(exe, dir, sizeof exe) != 0) return -1;
    int fits = snprintf(installed, sizeof installed, "%s/../share/sio-orchestrator", dir) <
               (int)sizeof installed;
    const char *found = fits && has_mark(installed)                 ? installed
                        : SIO_SOURCE_DIR[0] && has_mark(SIO_SOURCE_DIR) ? SIO_SOURCE_DIR
                                                                    : NULL;
    if (found == NULL || (size_t)snprintf(out, n, "%s", found) >= n) {
        fprintf(stderr,
                "%s: the files shipped with sio-orchestrator were not found: looked for %s "
                "in %s/../share/sio-orchestrator%s%s (install with cmake --install, or keep "
                "the source tree the binary was built from)\n",
                who, SHARE_MARK, dir, SIO_SOURCE_DIR[0] ? " and " : "", SIO_SOURCE_DIR);
        return -1;
    }
    return 0;
}
