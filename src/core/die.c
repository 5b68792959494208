#include "core/die.h"
#include <mpi.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PARTIAL 8
static char partial[MAX_PARTIAL][1024]; /* "" where free */
static jmp_buf *die_jump;

int ep_partial_begin(const char *path) {
    for (int i = 0; i < MAX_PARTIAL; i++)
        if (!partial[i][0]) {
            snprintf(partial[i], sizeof partial[i], "%s", path);
            return i;
        }
    return -1; /* more than MAX_PARTIAL at once: it is not removed on a death (never happens today) */
}

void ep_partial_done(int handle) {
    if (handle >= 0 && handle < MAX_PARTIAL) partial[handle][0] = 0;
}

void ep_die_jump(jmp_buf *jump) { die_jump = jump; }

void ep_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "entprog: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    if (die_jump) longjmp(*die_jump, 1);
    for (int i = 0; i < MAX_PARTIAL; i++)
        if (partial[i][0]) {
            unlink(partial[i]); /* ENOENT when another rank removed it first */
            partial[i][0] = 0;
        }
    fflush(NULL);
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    int size = 1;
    if (up && !down) MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (up && !down && size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    /* _exit: HDF5's exit handlers would try to close a file whose writes just
     * failed (that crashed with a segmentation fault on a full disk) */
    _exit(1);
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
