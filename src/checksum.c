#include "checksum.h"
#include <string.h>

#define FNV_BASIS 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static inline uint64_t mix(uint64_t h, uint64_t w) { return (h ^ w) * FNV_PRIME; }

/* Little-endian load of up to 8 bytes, zero-padded (memcpy: no alignment needs). */
static inline uint64_t load_le(const unsigned char *p, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w = 0;
    memcpy(&w, p, n); /* one load on the usual hosts */
    return w;
#else
    uint64_t w = 0;
    for (size_t i = n; i-- > 0;) w = (w << 8) | p[i];
    return w;
#endif
}

uint64_t checksum_digest(const void *data, size_t nbytes) {
    const unsigned char *p = data;
    uint64_t l[4] = {FNV_BASIS, FNV_BASIS ^ 1, FNV_BASIS ^ 2, FNV_BASIS ^ 3};
    size_t nw = nbytes / 8, i = 0;
    /* Four independent multiply chains: the CPU overlaps them. */
    for (; i + 4 <= nw; i += 4)
        for (int j = 0; j < 4; j++) l[j] = mix(l[j], load_le(p + 8 * (i + j), 8));
    for (; i < nw; i++) l[i % 4] = mix(l[i % 4], load_le(p + 8 * i, 8));
    if (nbytes % 8) l[i % 4] = mix(l[i % 4], load_le(p + 8 * i, nbytes % 8));
    uint64_t d = mix(FNV_BASIS, (uint64_t)nbytes);
    for (int j = 0; j < 4; j++) d = mix(d, l[j]);
    return d;
}

void checksum_init(Checksum *c) { c->h = FNV_BASIS; }

void checksum_add(Checksum *c, const char *name, const void *data, size_t nbytes) {
    c->h = mix(c->h, checksum_digest(name, strlen(name)));
    c->h = mix(c->h, checksum_digest(data, nbytes));
}
