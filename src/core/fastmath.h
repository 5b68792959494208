/* exp for float that the compiler can vectorise (glibc's expf/tanhf calls
 * block it and were a third of a CPU training step). Cody-Waite reduction by
 * ln 2 and a degree-6 polynomial on |r| <= ln2/2: relative error below 2e-7
 * over the clamped range, i.e. within 2 ulp of expf. */
#pragma once
#include <math.h>
#include <stdint.h>

static inline float ep_expf(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.7f ? 88.7f : x;
    /* round x/ln2 to the nearest integer by adding and removing 1.5*2^23
     * (floorf/fminf calls stop gcc -O2 from vectorising) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f; /* ln2 split in a short and a long part */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n (a union vectorises, memcpy did not); the shift is unsigned so that a
     * NaN x (a diverged run) gives NaN, not undefined behaviour */
    union { uint32_t i; float f; } scale = {(uint32_t)((int32_t)n + 127) << 23};
    return p * scale.f;
}

/* tanh(u) = 1 - 2 / (exp(2u) + 1): absolute error ~1e-7, enough where it is
 * used (GELU adds it to 1). */
static inline float ep_tanhf(float u) { return 1.0f - 2.0f / (ep_expf(2.0f * u) + 1.0f); }
