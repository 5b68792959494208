/* Where things are in ops.h's AttnShape layout, for both attention kernels:
 * problem z = z1 * Z2 + z2; its fused qkv rows, its output rows, its key sets. */
#pragma once
#include "ops/ops.h"
#include <stddef.h>

/* Row 0 of problem z's fused qkv rows (row r is a.ld floats further per row). */
__device__ inline const float *problem_rows(const AttnShape &a, const float *qkv, int z) {
    return qkv + (size_t)(z / a.Z2) * a.s1 + (size_t)(z % a.Z2) * a.s2;
}

/* Offset of row 0 of problem z's output (row r is a.old floats further per row). */
__device__ inline size_t problem_out(const AttnShape &a, int z) {
    return (size_t)(z / a.Z2) * a.os1 + (size_t)(z % a.Z2) * a.os2;
}

/* Key set `set` of problem z: 0 its own rows, 1 the sample's bank; NULL when
 * the bank is absent or dropped for this sample. */
__device__ inline const float *key_rows(const AttnShape &a, const float *qkv, const float *bank, const uint8_t *drop,
                                        int z, int set, size_t *ld, int *n) {
    if (set == 0) {
        *ld = a.ld;
        *n = a.nq;
        return problem_rows(a, qkv, z);
    }
    int z1 = z / a.Z2;
    if (a.nb == 0 || (drop && drop[z1])) return NULL;
    *ld = a.bld;
    *n = a.nb;
    return bank + (size_t)z1 * a.bs1;
}
