/* The memory-bound ops: LayerNorm, adaLN modulation, gated residuals,
 * activations, patch (un)folding and the model's small glue ops. Every sum
 * runs in a fixed order (no atomics), so a seed repeats bit for bit. */
#include "common.cuh"
#include "cuda/ops_cuda.h"

#define TPB 256

/* ---- deterministic column sums (bias, shift, scale and gate gradients) ---- */

#define CHUNK 64

__global__ static void colsum_partial(float *part, const float *a, const float *b, int T, int D, int nch) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, g = blockIdx.y, ch = blockIdx.z;
    if (c >= D) return;
    int t0 = ch * CHUNK, t1 = min(T, t0 + CHUNK);
    float s = 0.0f;
    for (int t = t0; t < t1; t++) {
        size_t i = ((size_t)g * T + t) * D + c;
        s += b ? a[i] * b[i] : a[i];
    }
    part[((size_t)g * nch + ch) * D + c] = s;
}

__global__ static void colsum_finish(float *out, int ld, const float *part, int D, int nch) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, g = blockIdx.y;
    if (c >= D) return;
    float s = 0.0f;
    for (int ch = 0; ch < nch; ch++) s += part[((size_t)g * nch + ch) * D + c];
    out[(size_t)g * ld + c] += s;
}

void cuda_colsum(float *out, int ld, const float *a, const float *b, int G, int T, int D) {
    if (G == 0 || T == 0 || D == 0) return;
    int nch = (T + CHUNK - 1) / CHUNK;
    float *part = cuda_workspace((size_t)G * nch * D, 0);
    dim3 g1(blocks_for(D, 128), G, nch), g2(blocks_for(D, 128), G);
    colsum_partial<<<g1, 128>>>(part, a, b, T, D, nch);
    KCHECK("colsum_partial");
    colsum_finish<<<g2, 128>>>(out, ld, part, D, nch);
    KCHECK("colsum_finish");
}

/* ---- LayerNorm: one warp per row ---- */

__device__ static float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* A row's mean and 1/sqrt(var + 1e-6), the warp's lanes striding over it. */
__device__ static void row_stats(const float *r, int D, int lane, float *mean, float *rstd) {
    float s = 0.0f;
    for (int i = lane; i < D; i += 32) s += r[i];
    float mu = warp_sum(s) / D, ss = 0.0f;
    for (int i = lane; i < D; i += 32) ss += (r[i] - mu) * (r[i] - mu);
    *mean = mu;
    *rstd = rsqrtf(warp_sum(ss) / D + 1e-6f);
}

/* LayerNorm of a row, then (where u is not NULL) its modulation by group
 * row / T; xhat (the normalised row) is written where not NULL. */
__global__ static void ln_modulate_fwd(float *u, float *xhat, float *mean, float *rstd, const float *x,
                                       const float *shift, const float *scale, int ld, int T, int N, int D) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *r = x + (size_t)row * D;
    float mu, rs;
    row_stats(r, D, lane, &mu, &rs);
    size_t o = (size_t)row * D, g = u ? (size_t)(row / T) * ld : 0;
    for (int i = lane; i < D; i += 32) {
        float xh = (r[i] - mu) * rs;
        if (xhat) xhat[o + i] = xh;
        if (u) u[o + i] = xh * (1.0f + scale[g + i]) + shift[g + i];
    }
    if (lane == 0) {
        mean[row] = mu;
        rstd[row] = rs;
    }
}

__global__ static void layernorm_bwd(float *dx, const float *dxhat, const float *xhat, const float *rstd, int N, int D) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *g = dxhat + (size_t)row * D, *h = xhat + (size_t)row * D;
    float a = 0.0f, b = 0.0f;
    for (int i = lane; i < D; i += 32) {
        a += g[i];
        b += g[i] * h[i];
    }
    a = warp_sum(a) / D;
    b = warp_sum(b) / D;
    float rs = rstd[row], *o = dx + (size_t)row * D;
    for (int i = lane; i < D; i += 32) o[i] += rs * (g[i] - a - h[i] * b);
}

extern "C" void cuda_layernorm(float *xhat, float *mean, float *rstd, const float *x, int N, int D) {
    ln_modulate_fwd<<<blocks_for(N, TPB / 32), TPB>>>(NULL, xhat, mean, rstd, x, NULL, NULL, 0, N, N, D);
    KCHECK("layernorm_fwd");
}

extern "C" void cuda_ln_modulate(float *u, float *xhat, float *mean, float *rstd, const float *x, const float *shift,
                                 const float *scale, int ld, int G, int T, int D) {
    int N = G * T;
    ln_modulate_fwd<<<blocks_for(N, TPB / 32), TPB>>>(u, xhat, mean, rstd, x, shift, scale, ld, T, N, D);
    KCHECK("ln_modulate_fwd");
}

extern "C" void cuda_layernorm_backward(float *dx, const float *dxhat, const float *xhat, const float *rstd, int N,
                                        int D) {
    layernorm_bwd<<<blocks_for(N, TPB / 32), TPB>>>(dx, dxhat, xhat, rstd, N, D);
    KCHECK("layernorm_bwd");
}

/* ---- adaLN modulation and gated residuals: element-wise, group g = row / T ---- */

#define FOR_EACH(n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static unsigned grid_for(size_t n) {
    size_t b = (n + TPB - 1) / TPB;
    return (unsigned)(b > 65536 ? 65536 : (b ? b : 1));
}

__global__ static void modulate_fwd(float *out, const float *x, const float *shift, const float *scale, int ld,
                                    size_t TD, int D, size_t n) {
    FOR_EACH(n) {
        size_t g = i / TD, c = i % D;
        out[i] = x[i] * (1.0f + scale[g * ld + c]) + shift[g * ld + c];
    }
}

__global__ static void scale_add(float *dx, const float *dout, const float *scale, int ld, size_t TD, int D,
                                 size_t n, float plus) {
    FOR_EACH(n) {
        size_t g = i / TD, c = i % D;
        dx[i] += dout[i] * (plus + scale[g * ld + c]);
    }
}

extern "C" void cuda_modulate(float *out, const float *x, const float *shift, const float *scale, int ld, int G, int T,
                              int D) {
    size_t n = (size_t)G * T * D;
    modulate_fwd<<<grid_for(n), TPB>>>(out, x, shift, scale, ld, (size_t)T * D, D, n);
    KCHECK("modulate_fwd");
}

extern "C" void cuda_modulate_backward(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                                       const float *scale, int ld, int G, int T, int D) {
    size_t n = (size_t)G * T * D;
    scale_add<<<grid_for(n), TPB>>>(dx, dout, scale, ld, (size_t)T * D, D, n, 1.0f);
    KCHECK("modulate_bwd");
    cuda_colsum(dshift, ld, dout, NULL, G, T, D);
    cuda_colsum(dscale, ld, dout, x, G, T, D);
}

/* z += gate * y is dy += gate * dz with the roles renamed */
extern "C" void cuda_gate_residual(float *z, const float *y, const float *gate, int ld, int G, int T, int D) {
    size_t n = (size_t)G * T * D;
    scale_add<<<grid_for(n), TPB>>>(z, y, gate, ld, (size_t)T * D, D, n, 0.0f);
    KCHECK("gate_residual");
}

extern "C" void cuda_gate_residual_backward(float *dy, float *dgate, const float *dz, const float *y,
                                            const float *gate, int ld, int G, int T, int D) {
    size_t n = (size_t)G * T * D;
    scale_add<<<grid_for(n), TPB>>>(dy, dz, gate, ld, (size_t)T * D, D, n, 0.0f);
    KCHECK("gate_residual_bwd");
    cuda_colsum(dgate, ld, dz, y, G, T, D);
}

/* ---- activations ---- */

#define GELU_K 0.7978845608028654f
#define GELU_C 0.044715f

__global__ static void silu_fwd(float *out, const float *x, size_t n) {
    FOR_EACH(n) out[i] = x[i] / (1.0f + expf(-x[i]));
}
__global__ static void silu_bwd(float *dx, const float *dout, const float *x, size_t n) {
    FOR_EACH(n) {
        float s = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += dout[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}
__global__ static void gelu_fwd(float *out, const float *x, size_t n) {
    FOR_EACH(n) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(GELU_K * (v + GELU_C * v * v * v)));
    }
}
__global__ static void gelu_bwd(float *dx, const float *dout, const float *x, size_t n) {
    FOR_EACH(n) {
        float v = x[i], th = tanhf(GELU_K * (v + GELU_C * v * v * v));
        float dth = (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_C * v * v);
        dx[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * v * dth);
    }
}

extern "C" void cuda_silu(float *out, const float *x, size_t n) {
    silu_fwd<<<grid_for(n), TPB>>>(out, x, n);
    KCHECK("silu");
}
extern "C" void cuda_silu_backward(float *dx, const float *dout, const float *x, size_t n) {
    silu_bwd<<<grid_for(n), TPB>>>(dx, dout, x, n);
    KCHECK("silu_bwd");
}
extern "C" void cuda_gelu_tanh(float *out, const float *x, size_t n) {
    gelu_fwd<<<grid_for(n), TPB>>>(out, x, n);
    KCHECK("gelu");
}
extern "C" void cuda_gelu_tanh_backward(float *dx, const float *dout, const float *x, size_t n) {
    gelu_bwd<<<grid_for(n), TPB>>>(dx, dout, x, n);
    KCHECK("gelu_bwd");
}
extern "C" void cuda_zero(float *p, size_t n) {
    if (n) CU(cudaMemsetAsync(p, 0, n * sizeof(float), 0));
}

/* ---- patches: one thread per value; the token <-> pixel map is one to one, so backward needs no atomics ---- */

/* Pixel index of token value i: image n, patch (gy,gx), in-patch (c,py,px) or (py,px,c). */
__device__ static size_t patch_pixel(size_t i, int C, int H, int W, int p, int c_last) {
    int K = C * p * p, gw = W / p, S = (H / p) * gw;
    size_t tokrow = i / K;
    int k = (int)(i % K), n = (int)(tokrow / S), s = (int)(tokrow % S), gy = s / gw, gx = s % gw, c, py, px;
    if (c_last) {
        c = k % C;
        py = k / C / p;
        px = k / C % p;
    } else {
        c = k / (p * p);
        py = k / p % p;
        px = k % p;
    }
    return (size_t)n * C * H * W + ((size_t)c * H + gy * p + py) * W + gx * p + px;
}

/* dir 0: tok = img; dir 1: tok += img; dir 2: img = tok; dir 3: img += tok */
__global__ static void patch_move(float *tok, float *img, size_t n, int C, int H, int W, int p, int c_last, int dir) {
    FOR_EACH(n) {
        size_t j = patch_pixel(i, C, H, W, p, c_last);
        switch (dir) {
        case 0: tok[i] = img[j]; break;
        case 1: tok[i] += img[j]; break;
        case 2: img[j] = tok[i]; break;
        default: img[j] += tok[i]; break;
        }
    }
}

static void patch(float *tok, const float *img, int N, int C, int H, int W, int p, int c_last, int dir) {
    size_t n = (size_t)N * C * H * W;
    patch_move<<<grid_for(n), TPB>>>(tok, (float *)img, n, C, H, W, p, c_last, dir);
    KCHECK("patch_move");
}

extern "C" void cuda_patchify(float *tok, const float *img, int N, int Cn, int H, int W, int p) {
    patch(tok, img, N, Cn, H, W, p, 0, 0);
}
extern "C" void cuda_patchify_backward(float *dimg, const float *dtok, int N, int Cn, int H, int W, int p) {
    patch((float *)dtok, dimg, N, Cn, H, W, p, 0, 3);
}
extern "C" void cuda_unpatchify_final(float *img, const float *tok, int N, int C, int H, int W, int p) {
    patch((float *)tok, img, N, C, H, W, p, 1, 2);
}
extern "C" void cuda_unpatchify_final_backward(float *dtok, const float *dimg, int N, int C, int H, int W, int p) {
    patch(dtok, dimg, N, C, H, W, p, 1, 1);
}

/* ---- embeddings and per-sample masks ---- */

__global__ static void timestep_embed_k(float *out, const int *t, int B) {
    int row = blockIdx.x, i = threadIdx.x; /* 2B rows x 128 frequencies */
    if (i >= 128) return;
    double f = exp(-log(10000.0) * i / 128.0), tt = row < B ? (double)t[row] : 0.0;
    out[(size_t)row * 256 + i] = (float)cos(tt * f);
    out[(size_t)row * 256 + 128 + i] = (float)sin(tt * f);
}

extern "C" void cuda_timestep_embed(float *out, const int *t, int B) {
    timestep_embed_k<<<2 * B, 128>>>(out, t, B);
    KCHECK("timestep_embed");
}

__global__ static void add_pos_k(float *z, const float *pos, const float *frame, size_t nframe_rows, int S, int F,
                                 int D, size_t n) {
    FOR_EACH(n) {
        size_t r = i / D;
        int j = (int)(i % D);
        float add = pos ? pos[(r % S) * D + j] : 0.0f; /* NULL: the frame embedding alone */
        if (r < nframe_rows) add += frame[((r / S) % F) * D + j];
        z[i] += add;
    }
}

extern "C" void cuda_add_pos(float *z, const float *pos, const float *frame, size_t rows, size_t nframe_rows, int S,
                             int F, int D) {
    size_t n = rows * D;
    add_pos_k<<<grid_for(n), TPB>>>(z, pos, frame, nframe_rows, S, F, D, n);
    KCHECK("add_pos");
}

__global__ static void masked_k(float *dst, const float *src, const uint8_t *drop, size_t per, size_t n, int add) {
    FOR_EACH(n) {
        int keep = !drop[i / per];
        if (add) dst[i] += keep ? src[i] : 0.0f;
        else dst[i] = keep ? src[i] : 0.0f;
    }
}

extern "C" void cuda_add_unless(float *z, const float *x, const uint8_t *drop, int B, size_t n) {
    masked_k<<<grid_for((size_t)B * n), TPB>>>(z, x, drop, n, (size_t)B * n, 1);
    KCHECK("add_unless");
}
extern "C" void cuda_copy_unless(float *dst, const float *src, const uint8_t *drop, int B, size_t n) {
    masked_k<<<grid_for((size_t)B * n), TPB>>>(dst, src, drop, n, (size_t)B * n, 0);
    KCHECK("copy_unless");
}
