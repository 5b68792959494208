/* The one scan for NaN and Inf: loaders refuse such values, checkpoints never hold them. */
#pragma once
#include <math.h>
#include <stddef.h>

/* Index of the first non-finite value of x[0..n), or n. */
static inline size_t first_nonfinite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return n;
}
