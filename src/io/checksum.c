#include "io/checksum.h"
#include <string.h>

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static inline uint64_t splitmix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void checksum_init(Checksum *c) { c->h = 0; }

void checksum_add_range(Checksum *c, const char *name, size_t first, const float *x, size_t n) {
    uint64_t key = fnv1a(name), sum = 0;
#pragma omp parallel for reduction(+ : sum) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, x + i, sizeof w);
        sum += splitmix((key + (uint64_t)(first + i) * 0x9E3779B97F4A7C15ull) ^ w);
    }
    c->h += sum;
}
