#include "core/die.h"
#include <mpi.h>
#include <stdarg.h>
#include <stdlib.h>

void ep_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "entprog: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    int size = 1;
    if (up && !down) MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (up && !down && size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

void ep_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "entprog: warning: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

void *ep_malloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ep_die("out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *ep_calloc(size_t n, size_t size, const char *what) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) ep_die("out of memory allocating %zu x %zu bytes for %s", n, size, what);
    return p;
}
