#include "core/paths.h"
#include "core/die.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void path_mkdirs(const char *dir, const char *what) {
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof buf, "%s", dir) >= sizeof buf) ep_die("%s = '%s' is too long", what, dir);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        if (mkdir(buf, 0775) != 0 && errno != EEXIST)
            ep_die("cannot create folder '%s' (%s = '%s'): %s", buf, what, dir, strerror(errno));
        if (!c) break;
        *p = c;
    }
}

void path_join(char *buf, size_t n, const char *dir, const char *name) {
    int k = snprintf(buf, n, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= n) ep_die("path '%s/%s' is too long", dir, name);
}
