#include "core/mem.h"
#include "core/die.h"
#include <stdlib.h>

/* Each block carries its size in a 64-byte header (keeps 64-byte alignment). */
#define HEADER 64

static size_t in_use, peak;

void *mem_alloc(size_t bytes, const char *what) {
    unsigned char *p = NULL;
    if (posix_memalign((void **)&p, HEADER, HEADER + bytes) != 0 || !p)
        ep_die("out of memory allocating %zu bytes for %s", bytes, what);
    *(size_t *)p = bytes;
    for (size_t i = HEADER; i < HEADER + bytes; i++) p[i] = 0;
    in_use += bytes;
    if (in_use > peak) peak = in_use;
    return p + HEADER;
}

void mem_free(void *q) {
    if (!q) return;
    unsigned char *p = (unsigned char *)q - HEADER;
    in_use -= *(size_t *)p;
    free(p);
}

size_t mem_in_use(void) { return in_use; }
size_t mem_peak(void) { return peak; }
void mem_reset_peak(void) { peak = in_use; }
