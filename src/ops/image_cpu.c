/* CPU-only image kernels for the VAE (image_cpu.h); no CUDA counterpart. */
#include "ops/image_cpu.h"
#include "core/die.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void img_groupnorm(float *out, const float *x, const float *gamma, const float *beta, int C, size_t HW, int G,
                   float eps, int silu) {
    int cg = C / G;
    size_t n = (size_t)cg * HW;
#pragma omp parallel for schedule(dynamic)
    for (int g = 0; g < G; g++) {
        const float *xg = x + (size_t)g * n;
        /* two passes in double: the mean, then the variance about it */
        double s = 0, ss = 0;
        for (size_t i = 0; i < n; i++) s += xg[i];
        double mean = s / (double)n;
        for (size_t i = 0; i < n; i++) ss += (xg[i] - mean) * (xg[i] - mean);
        float rstd = (float)(1.0 / sqrt(ss / (double)n + eps)), m = (float)mean;
        for (int c = g * cg; c < (g + 1) * cg; c++) {
            const float *xc = x + (size_t)c * HW;
            float *oc = out + (size_t)c * HW, a = gamma[c] * rstd, b = beta[c] - m * a;
            for (size_t i = 0; i < HW; i++) {
                float v = xc[i] * a + b;
                oc[i] = silu ? v / (1.0f + expf(-v)) : v;
            }
        }
    }
}

void img_upsample2x(float *out, const float *in, int C, int H, int W) {
#pragma omp parallel for
    for (int c = 0; c < C; c++)
        for (int y = 0; y < 2 * H; y++) {
            const float *src = in + ((size_t)c * H + y / 2) * W;
            float *dst = out + ((size_t)c * 2 * H + y) * 2 * W;
            for (int x = 0; x < 2 * W; x++) dst[x] = src[x / 2];
        }
}

void img_transpose(float *out, const float *in, size_t rows, size_t cols) {
    enum { T = 32 }; /* tiles, so both sides stay in cache */
#pragma omp parallel for collapse(2)
    for (size_t r0 = 0; r0 < rows; r0 += T)
        for (size_t c0 = 0; c0 < cols; c0 += T)
            for (size_t r = r0; r < r0 + T && r < rows; r++)
                for (size_t c = c0; c < c0 + T && c < cols; c++) out[c * rows + r] = in[r * cols + c];
}

/* im2col of output rows [y0, y1): col [Cin*k*k, (y1-y0)*Wo]. */
static void im2col_rows(float *col, const float *in, int Cin, int H, int W, int k, int stride, int pad, int y0,
                        int y1, int Wo) {
    size_t P = (size_t)(y1 - y0) * Wo;
    for (int c = 0; c < Cin; c++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                float *row = col + ((size_t)(c * k + i) * k + j) * P;
                for (int oy = y0; oy < y1; oy++) {
                    int y = oy * stride - pad + i;
                    float *r = row + (size_t)(oy - y0) * Wo;
                    if (y < 0 || y >= H) {
                        memset(r, 0, (size_t)Wo * sizeof(float));
                        continue;
                    }
                    const float *src = in + ((size_t)c * H + y) * W;
                    for (int ox = 0; ox < Wo; ox++) {
                        int x = ox * stride - pad + j;
                        r[ox] = (x >= 0 && x < W) ? src[x] : 0.0f;
                    }
                }
            }
}

#define BAND_FLOATS (1u << 20) /* 4 MB of im2col per thread */

void img_conv2d(float *out, const float *in, const float *W, const float *bias, int Cin, int H, int Wd, int Cout,
                int k, int stride, int pad, int Ho, int Wo) {
    size_t P = (size_t)Ho * Wo, K = (size_t)Cin * k * k;
    for (int o = 0; o < Cout; o++)
        for (size_t i = 0; i < P; i++) out[(size_t)o * P + i] = bias ? bias[o] : 0.0f;
    int T = omp_get_max_threads();
    if (k == 1 && stride == 1 && pad == 0 && Ho == H && Wo == Wd) { /* the image is its own im2col */
#pragma omp parallel
        {
            size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
            size_t lo = P * t / nt, hi = P * (t + 1) / nt;
            if (hi > lo)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)(hi - lo), Cin, 1.0f, W, Cin,
                            in + lo, (int)P, 1.0f, out + lo, (int)P);
        }
        return;
    }
    int rows = (int)(BAND_FLOATS / (K * (size_t)Wo));
    if (rows < 1) rows = 1;
    if (rows > (Ho + T - 1) / T) rows = (Ho + T - 1) / T; /* at least one band per thread */
    int nband = (Ho + rows - 1) / rows;
    float *col = ep_malloc((size_t)T * K * rows * Wo * sizeof(float), "conv scratch");
#pragma omp parallel for schedule(dynamic)
    for (int b = 0; b < nband; b++) {
        int y0 = b * rows, y1 = y0 + rows < Ho ? y0 + rows : Ho, n = (y1 - y0) * Wo;
        float *c = col + (size_t)omp_get_thread_num() * K * rows * Wo;
        im2col_rows(c, in, Cin, H, Wd, k, stride, pad, y0, y1, Wo);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, n, (int)K, 1.0f, W, (int)K, c, n, 1.0f,
                    out + (size_t)y0 * Wo, (int)P);
    }
    free(col);
}
