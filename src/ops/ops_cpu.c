/* CPU (fp32) implementation of the dense and pointwise ops of ops.h.
 * Threads: OpenMP splits every op across cores and OpenBLAS runs single-
 * threaded inside each piece (its own threads spun on sched_yield and made
 * a 2-core step slower than one core). */
#include "ops/ops_cpu.h"
#include "ops/embed.h"
#include "core/fastmath.h"
#include <cblas.h>
#include <omp.h>
#include "core/die.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int);

__attribute__((constructor)) static void single_threaded_blas(void) { openblas_set_num_threads(1); }

/* Products smaller than this many multiply-adds stay on one thread. */
#define PAR_MIN_WORK 65536.0

/* [lo, hi) share of n items for the calling thread of a parallel region. */
static void share(int n, int *lo, int *hi) {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    *lo = (int)((long long)n * t / T);
    *hi = (int)((long long)n * (t + 1) / T);
}

void cpu_linear(float *out, const float *in, const float *W, const float *bias, int N, int Ni, int O) {
#pragma omp parallel if ((double)N * Ni * O > PAR_MIN_WORK)
    {
        int lo, hi;
        share(N, &lo, &hi);
        if (bias)
            for (int n = lo; n < hi; n++) memcpy(out + (size_t)n * O, bias, (size_t)O * sizeof(float));
        if (hi > lo)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, O, Ni, 1.0f, in + (size_t)lo * Ni, Ni, W,
                        Ni, bias ? 1.0f : 0.0f, out + (size_t)lo * O, O);
    }
}

/* The linear, then the GELU: the same values as those two ops, bit for bit
 * (a GPU fuses them in one product's epilogue). */
void cpu_linear_gelu(float *h, float *g, const float *in, const float *W, const float *bias, int N, int Ni, int O) {
    cpu_linear(h, in, W, bias, N, Ni, O);
    cpu_gelu_tanh(g, h, (size_t)N * O);
}

void cpu_linear_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W,
                        int N, int Ni, int O) {
#pragma omp parallel if ((double)N * Ni * O > PAR_MIN_WORK)
    {
        int lo, hi;
        share(N, &lo, &hi); /* din: rows of the batch */
        if (din && hi > lo)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, Ni, O, 1.0f, dout + (size_t)lo * O, O, W,
                        Ni, 1.0f, din + (size_t)lo * Ni, Ni);
        share(O, &lo, &hi); /* dW, db: output features, so no two threads add into one value */
        if (dW && hi > lo)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, Ni, N, 1.0f, dout + lo, O, in, Ni, 1.0f,
                        dW + (size_t)lo * Ni, Ni);
        if (db)
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * O;
                for (int o = lo; o < hi; o++) db[o] += g[o];
            }
    }
}

/* The linear's backward into scratch, then the GELU's: the values of those
 * ops as mlp_backward ran them before this op, bit for bit (a GPU fuses the
 * GELU gradient into the din product's epilogue). */
void cpu_linear_backward_dgelu(float *dh, float *dW, float *db, const float *dout, const float *in, const float *W,
                               const float *h, float *scratch, int N, int Ni, int O) {
    size_t n = (size_t)N * Ni;
    cpu_zero(scratch, n);
    cpu_linear_backward(scratch, dW, db, dout, in, W, N, Ni, O);
    cpu_zero(dh, n);
    cpu_gelu_tanh_backward(dh, scratch, h, n);
}

/* The sum over i of r[i] - c, or of its square, in double, in 8
 * interleaved partial sums added in a fixed order: eight independent chains
 * instead of one long one (the sums are a third of a LayerNorm's time). */
static double row_sum(const float *r, int D, double c, int square) {
    double p[8] = {0};
    int i = 0;
    for (; i + 8 <= D; i += 8)
        for (int k = 0; k < 8; k++) {
            double v = r[i + k] - c;
            p[k] += square ? v * v : v;
        }
    double s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (; i < D; i++) {
        double v = r[i] - c;
        s += square ? v * v : v;
    }
    return s;
}

/* A row's mean and 1/sqrt(var + 1e-6), summed in double: the variance of
 * O(1e2)-sized rows keeps its digits. */
static void row_stats(const float *r, int D, float *mean, float *rstd) {
    double mu = row_sum(r, D, 0.0, 0) / D;
    *rstd = (float)(1.0 / sqrt(row_sum(r, D, mu, 1) / D + 1e-6));
    *mean = (float)mu;
}

void cpu_ln_modulate(float *u, float *xhat, float *mean, float *rstd, const float *x, const float *shift,
                     const float *scale, int ld, int G, int T, int D) {
    int N = G * T;
#pragma omp parallel for if (N * D > 16384)
    for (int n = 0; n < N; n++) {
        const float *r = x + (size_t)n * D;
        float muf, rs;
        row_stats(r, D, &muf, &rs);
        if (xhat) {
            float *o = xhat + (size_t)n * D;
#pragma omp simd
            for (int i = 0; i < D; i++) o[i] = (r[i] - muf) * rs;
        }
        if (u) {
            float *o = u + (size_t)n * D;
            const float *sh = shift + (size_t)(n / T) * ld, *sc = scale + (size_t)(n / T) * ld;
#pragma omp simd
            for (int i = 0; i < D; i++) {
                float xh = (r[i] - muf) * rs;
                o[i] = xh * (1.0f + sc[i]) + sh[i];
            }
        }
        mean[n] = muf;
        rstd[n] = rs;
    }
}

/* LayerNorm alone is the fused op without the modulation. */
void cpu_layernorm(float *xhat, float *mean, float *rstd, const float *x, int N, int D) {
    cpu_ln_modulate(NULL, xhat, mean, rstd, x, NULL, NULL, 0, 1, N, D);
}

void cpu_layernorm_backward(float *dx, const float *dxhat, const float *xhat, const float *rstd, int N, int D) {
#pragma omp parallel for if (N * D > 16384)
    for (int n = 0; n < N; n++) {
        const float *g = dxhat + (size_t)n * D, *h = xhat + (size_t)n * D;
        float a = 0, b = 0;
        for (int i = 0; i < D; i++) {
            a += g[i];
            b += g[i] * h[i];
        }
        a /= D;
        b /= D;
        float *o = dx + (size_t)n * D;
        for (int i = 0; i < D; i++) o[i] += rstd[n] * (g[i] - a - h[i] * b);
    }
}

void cpu_modulate(float *out, const float *x, const float *shift, const float *scale, int ld, int G, int T, int D) {
#pragma omp parallel for collapse(2) if ((long long)G * T * D > 16384)
    for (int g = 0; g < G; g++)
        for (int t = 0; t < T; t++) {
            const float *sh = shift + (size_t)g * ld, *sc = scale + (size_t)g * ld;
            size_t r = ((size_t)g * T + t) * D;
            for (int i = 0; i < D; i++) out[r + i] = x[r + i] * (1.0f + sc[i]) + sh[i];
        }
}

/* The shift/scale sums run over the T rows of a group: threads split the
 * feature columns so each sum has one owner and a fixed order. */
void cpu_modulate_backward(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                          const float *scale, int ld, int G, int T, int D) {
#pragma omp parallel if ((long long)G * T * D > 16384)
    {
        int lo, hi;
        share(D, &lo, &hi);
        for (int g = 0; g < G; g++) {
            const float *sc = scale + (size_t)g * ld;
            float *dsh = dshift + (size_t)g * ld, *dsc = dscale + (size_t)g * ld;
            for (int t = 0; t < T; t++) {
                size_t r = ((size_t)g * T + t) * D;
                for (int i = lo; i < hi; i++) {
                    float d = dout[r + i];
                    dx[r + i] += d * (1.0f + sc[i]);
                    dsh[i] += d;
                    dsc[i] += d * x[r + i];
                }
            }
        }
    }
}

void cpu_gate_residual(float *z, const float *y, const float *gate, int ld, int G, int T, int D) {
#pragma omp parallel for collapse(2) if ((long long)G * T * D > 16384)
    for (int g = 0; g < G; g++)
        for (int t = 0; t < T; t++) {
            const float *gt = gate + (size_t)g * ld;
            size_t r = ((size_t)g * T + t) * D;
            for (int i = 0; i < D; i++) z[r + i] += gt[i] * y[r + i];
        }
}

void cpu_gate_residual_backward(float *dy, float *dgate, const float *dz, const float *y, const float *gate,
                               int ld, int G, int T, int D) {
#pragma omp parallel if ((long long)G * T * D > 16384)
    {
        int lo, hi;
        share(D, &lo, &hi);
        for (int g = 0; g < G; g++) {
            const float *gt = gate + (size_t)g * ld;
            float *dg = dgate + (size_t)g * ld;
            for (int t = 0; t < T; t++) {
                size_t r = ((size_t)g * T + t) * D;
                for (int i = lo; i < hi; i++) {
                    dy[r + i] += gt[i] * dz[r + i];
                    dg[i] += dz[r + i] * y[r + i];
                }
            }
        }
    }
}

void cpu_silu(float *out, const float *x, size_t n) {
#pragma omp parallel for simd if (n > 16384)
    for (size_t i = 0; i < n; i++) out[i] = x[i] / (1.0f + ep_expf(-x[i]));
}

void cpu_silu_backward(float *dx, const float *dout, const float *x, size_t n) {
#pragma omp parallel for simd if (n > 16384)
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + ep_expf(-x[i]));
        dx[i] += dout[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

void cpu_gelu_tanh(float *out, const float *x, size_t n) {
#pragma omp parallel for simd if (n > 16384)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + ep_tanhf(GELU_K * (v + GELU_C * v * v * v)));
    }
}

void cpu_gelu_tanh_backward(float *dx, const float *dout, const float *x, size_t n) {
#pragma omp parallel for simd if (n > 16384)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float th = ep_tanhf(GELU_K * (v + GELU_C * v * v * v));
        float dth = (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_C * v * v);
        dx[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * v * dth);
    }
}

void cpu_patchify_one(float *tok, const float *img, int Cn, int H, int W, int p) {
    int gw = W / p, K = Cn * p * p;
    for (int gy = 0; gy < H / p; gy++)
        for (int gx = 0; gx < gw; gx++) {
            float *t = tok + (size_t)(gy * gw + gx) * K;
            for (int c = 0; c < Cn; c++)
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < p; j++) *t++ = img[((size_t)c * H + gy * p + i) * W + gx * p + j];
        }
}

void cpu_patchify_backward_one(float *dimg, const float *dtok, int Cn, int H, int W, int p) {
    int gw = W / p, K = Cn * p * p;
    for (int gy = 0; gy < H / p; gy++)
        for (int gx = 0; gx < gw; gx++) {
            const float *t = dtok + (size_t)(gy * gw + gx) * K;
            for (int c = 0; c < Cn; c++)
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < p; j++) dimg[((size_t)c * H + gy * p + i) * W + gx * p + j] += *t++;
        }
}

void cpu_unpatchify_final_one(float *img, const float *tok, int C, int H, int W, int p) {
    int gw = W / p, K = p * p * C;
    for (int gy = 0; gy < H / p; gy++)
        for (int gx = 0; gx < gw; gx++) {
            const float *t = tok + (size_t)(gy * gw + gx) * K;
            for (int i = 0; i < p; i++)
                for (int j = 0; j < p; j++)
                    for (int c = 0; c < C; c++) img[((size_t)c * H + gy * p + i) * W + gx * p + j] = *t++;
        }
}

void cpu_unpatchify_final_backward_one(float *dtok, const float *dimg, int C, int H, int W, int p) {
    int gw = W / p, K = p * p * C;
    for (int gy = 0; gy < H / p; gy++)
        for (int gx = 0; gx < gw; gx++) {
            float *t = dtok + (size_t)(gy * gw + gx) * K;
            for (int i = 0; i < p; i++)
                for (int j = 0; j < p; j++)
                    for (int c = 0; c < C; c++) *t++ += dimg[((size_t)c * H + gy * p + i) * W + gx * p + j];
        }
}

/* ---- batched forms and the small model-glue ops ---- */

/* The four patch maps are one image at a time, each image's tokens as many floats as its pixels. */
static void each_image(void (*one)(float *, const float *, int, int, int, int), float *dst, const float *src, int N,
                      int C, int H, int W, int p) {
    size_t isz = (size_t)C * H * W;
#pragma omp parallel for if (N * isz > 65536)
    for (int n = 0; n < N; n++) one(dst + n * isz, src + n * isz, C, H, W, p);
}

void cpu_patchify(float *tok, const float *img, int N, int Cn, int H, int W, int p) {
    each_image(cpu_patchify_one, tok, img, N, Cn, H, W, p);
}
void cpu_patchify_backward(float *dimg, const float *dtok, int N, int Cn, int H, int W, int p) {
    each_image(cpu_patchify_backward_one, dimg, dtok, N, Cn, H, W, p);
}
void cpu_unpatchify_final(float *img, const float *tok, int N, int C, int H, int W, int p) {
    each_image(cpu_unpatchify_final_one, img, tok, N, C, H, W, p);
}
void cpu_unpatchify_final_backward(float *dtok, const float *dimg, int N, int C, int H, int W, int p) {
    each_image(cpu_unpatchify_final_backward_one, dtok, dimg, N, C, H, W, p);
}

void cpu_zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

void cpu_timestep_embed(float *out, const int *t, int B) {
    for (int i = 0; i < B; i++) {
        embed_timestep(out + (size_t)i * 256, t[i]);
        embed_timestep(out + (size_t)(B + i) * 256, 0);
    }
}

void cpu_add_pos(float *z, const float *pos, const float *frame, size_t rows, size_t nframe_rows, int S, int F,
                 int D) {
#pragma omp parallel for if (rows * D > 65536)
    for (size_t r = 0; r < rows; r++) {
        float *row = z + r * D;
        if (!pos) { /* the frame embedding alone */
            if (r < nframe_rows)
                for (int j = 0; j < D; j++) row[j] += frame[((r / S) % F) * D + j];
            continue;
        }
        const float *ps = pos + (r % S) * D;
        if (r < nframe_rows) {
            const float *fe = frame + ((r / S) % F) * D;
            for (int j = 0; j < D; j++) row[j] += ps[j] + fe[j];
        } else {
            for (int j = 0; j < D; j++) row[j] += ps[j];
        }
    }
}

void cpu_add_unless(float *z, const float *x, const uint8_t *drop, int B, size_t n) {
    for (int i = 0; i < B; i++)
        if (!drop[i])
            for (size_t j = 0; j < n; j++) z[i * n + j] += x[i * n + j];
}

void cpu_copy_unless(float *dst, const float *src, const uint8_t *drop, int B, size_t n) {
    for (int i = 0; i < B; i++) {
        if (drop[i]) memset(dst + i * n, 0, n * sizeof(float));
        else memcpy(dst + i * n, src + i * n, n * sizeof(float));
    }
}

/* ---- optimizer ---- */

static void cpu_adamw(float *p, const float *g, float *m, float *v, size_t n, float b1, float b2, float step,
                      float rbc2, float eps, float decay, float grad_scale) {
#pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) * rbc2 + eps);
    }
}

void cpu_sgd(float *p, const float *g, float *m, size_t n, float mu, float wd, float lr, float grad_scale) {
#pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale + wd * p[i];
        m[i] = mu * m[i] + gi;
        p[i] -= lr * m[i];
    }
}

void cpu_ema(float *ema, const float *p, size_t n, float decay) {
    float e = 1.0f - decay;
#pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++) ema[i] = decay * ema[i] + e * p[i];
}

/* Fixed chunks summed in order: the same result for any number of threads
 * (a paper-size model has ~1e9 values: one thread would take a second). */
double cpu_sum_squares(const float *g, size_t n) {
    enum { CHUNK = 1 << 16 };
    size_t nc = (n + CHUNK - 1) / CHUNK;
    double *part = malloc((nc ? nc : 1) * sizeof(double));
    if (!part) ep_die("out of memory for %zu partial sums", nc);
#pragma omp parallel for if (nc > 1)
    for (size_t c = 0; c < nc; c++) {
        size_t hi = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
        double s = 0;
        for (size_t i = c * CHUNK; i < hi; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += part[c];
    free(part);
    return s;
}

void cpu_adamw_multi(float *params, const float *grads, float *m, float *v, const AdamSeg *segs, int nseg, float b1,
                     float b2, float eps, float grad_scale) {
    for (int k = 0; k < nseg; k++) {
        const AdamSeg *s = &segs[k];
        cpu_adamw(params + s->p, grads + s->g, m + s->mo, v + s->mo, s->n, b1, b2, s->step, s->rbc2, eps, s->decay,
                  grad_scale);
    }
}
