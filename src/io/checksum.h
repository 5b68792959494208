/* The checkpoint checksum: a 64-bit sum that a loader recomputes to refuse a
 * file whose tensor bytes changed after it was written.
 *
 * Algorithm (format_version 2), additive so that ranks can each hash the
 * shard they write and the sums simply add up, in any order:
 *   key(name)     = FNV-1a-64 of the dataset path bytes ("/model/final.linear.bias")
 *   term(name,j,w)= splitmix64(key(name) + j * 0x9E3779B97F4A7C15  xor  w)
 *                   for element j (row-major index in the tensor) with float32 bits w
 *   checksum      = sum of all terms over every stored tensor, mod 2^64
 * splitmix64 is a bijection of 64-bit words, so for a fixed element the term
 * changes whenever its bits change: any single changed value always changes
 * the sum; several changes cancel only with probability ~2^-64. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t h; } Checksum;

void checksum_init(Checksum *c);
/* Adds elements first .. first+n-1 of the tensor stored under `name`. */
void checksum_add_range(Checksum *c, const char *name, size_t first, const float *x, size_t n);
/* A whole tensor. */
static inline void checksum_add(Checksum *c, const char *name, const float *x, size_t n) {
    checksum_add_range(c, name, 0, x, n);
}
