/* The checkpoint checksum: a 64-bit hash of every stored tensor, so a loader
 * can refuse a file whose bytes changed after it was written.
 *
 * Algorithm ("FNV-1a-64 on words, 4 lanes"), all words little-endian u64:
 *   mix(h, w) = (h ^ w) * 0x100000001b3             (mod 2^64, FNV-1a prime)
 *   digest(bytes): lanes l[j] = 0xcbf29ce484222325 ^ j, j = 0..3; word i of the
 *     bytes (last one zero-padded) goes into l[i % 4] = mix(l[i % 4], w_i);
 *     then d = mix(0xcbf29ce484222325, nbytes); d = mix(d, l[j]) for j = 0..3.
 *   sum: h = 0xcbf29ce484222325; per tensor, in the file's fixed order:
 *     h = mix(h, digest(name bytes)); h = mix(h, digest(float32 bytes)).
 * mix is a bijection in both arguments, so one changed word always changes
 * the sum; four independent lanes keep it near memory speed. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t h; } Checksum;

uint64_t checksum_digest(const void *data, size_t nbytes);
void checksum_init(Checksum *c);
/* Adds one named tensor (name: its full path in the file, e.g. "/model/final.linear.bias"). */
void checksum_add(Checksum *c, const char *name, const void *data, size_t nbytes);
