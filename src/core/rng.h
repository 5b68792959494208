/* A seeded generator whose whole state is four words, so checkpoints can
 * store it and resume bit-exactly (xoshiro256**, seeded through splitmix64). */
#pragma once
#include <stdint.h>

typedef struct Rng { uint64_t s[4]; } Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
float rng_uniform(Rng *r);            /* [0, 1) with 24 random bits */
float rng_normal(Rng *r);             /* N(0,1), Box-Muller, no cached spare */
uint32_t rng_below(Rng *r, uint32_t n); /* uniform integer in [0, n) */
/* An independent stream derived from a seed and a purpose tag. */
void rng_seed_stream(Rng *r, uint64_t seed, uint64_t stream);
