/* Flash-style attention: the score matrix is never stored. Forward streams
 * key/value tiles through shared memory with an online softmax and keeps
 * only the log-sum-exp of each query row; backward recomputes the
 * probabilities from it in three passes that each own their outputs (dq
 * per query row, dk/dv per own key row, dk/dv per bank row summed over the
 * sample's frames in order), so no atomics and no score matrix. One thread
 * holds one row; fp32 throughout; DH is the head width rounded up to an
 * instantiated size. */
#include "attention_layout.cuh"
#include "attention_sdpa.cuh"
#include "attention_tc.cuh"
#include "common.cuh"
#include "cuda/ops_cuda.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BQ 64 /* rows (threads) per block */
/* The kernels unless ENTPROG_ATTN says otherwise: the tensor-core ones (tested
 * on an H200); cuDNN's (ATTN_CUDNN) have not yet run on a GPU. */
#define ATTN_DEFAULT ATTN_TC
#define BK 32 /* rows per shared-memory tile */

extern "C" size_t cuda_attention_state_floats(const AttnShape *a) {
    return (size_t)a->Z1 * a->Z2 * a->NH * a->nq;
}
extern "C" size_t cuda_attention_scratch_floats(const AttnShape *a) { return cuda_attention_state_floats(a); }

__device__ static const float *qkv_row(const AttnShape &a, const float *qkv, int z, int r) {
    return problem_rows(a, qkv, z) + (size_t)r * a.ld;
}
__device__ static size_t out_row(const AttnShape &a, int z, int r) { return problem_out(a, z) + (size_t)r * a.old; }

/* Stages rows [j0, j0+BK) of two column blocks (offsets c0, c1) of a row set into shared memory. */
template <int DH>
__device__ static void stage(float (*X)[DH], float (*Y)[DH], const float *rows, size_t ld, int n, int j0, int c0, int c1,
                             int dh) {
    for (int e = threadIdx.x; e < BK * DH; e += blockDim.x) {
        int jj = e / DH, d = e % DH, j = j0 + jj;
        int ok = j < n && d < dh;
        X[jj][d] = ok ? rows[(size_t)j * ld + c0 + d] : 0.0f;
        Y[jj][d] = ok ? rows[(size_t)j * ld + c1 + d] : 0.0f;
    }
}

template <int DH>
__device__ static float dot(const float *x, const float *y) {
    float s = 0.0f;
#pragma unroll
    for (int d = 0; d < DH; d++) s += x[d] * y[d];
    return s;
}

template <int DH>
__global__ static void __launch_bounds__(BQ) fwd(AttnShape a, float *out, float *lse, const float *qkv,
                                                  const float *bank, const uint8_t *drop, float scale) {
    __shared__ float Ks[BK][DH], Vs[BK][DH];
    int nt = (a.nq + BQ - 1) / BQ, z = blockIdx.x / nt, h = blockIdx.y, dh = a.dh, D = a.NH * dh;
    int r = (blockIdx.x % nt) * BQ + threadIdx.x, valid = r < a.nq;
    float q[DH], acc[DH], m = -INFINITY, l = 0.0f;
    const float *qr = qkv_row(a, qkv, z, valid ? r : 0) + h * dh;
#pragma unroll
    for (int d = 0; d < DH; d++) {
        q[d] = d < dh ? qr[d] * scale : 0.0f;
        acc[d] = 0.0f;
    }
    for (int set = 0; set < 2; set++) {
        size_t ld;
        int n;
        const float *rows = key_rows(a, qkv, bank, drop, z, set, &ld, &n);
        if (!rows) break;
        for (int j0 = 0; j0 < n; j0 += BK) {
            stage<DH>(Ks, Vs, rows, ld, n, j0, D + h * dh, 2 * D + h * dh, dh);
            __syncthreads();
            float s[BK], mt = m;
#pragma unroll
            for (int jj = 0; jj < BK; jj++) {
                s[jj] = j0 + jj < n ? dot<DH>(q, Ks[jj]) : -INFINITY;
                mt = fmaxf(mt, s[jj]);
            }
            float corr = __expf(m - mt);
            l *= corr;
#pragma unroll
            for (int d = 0; d < DH; d++) acc[d] *= corr;
#pragma unroll
            for (int jj = 0; jj < BK; jj++) {
                float p = __expf(s[jj] - mt);
                l += p;
#pragma unroll
                for (int d = 0; d < DH; d++) acc[d] += p * Vs[jj][d];
            }
            m = mt;
            __syncthreads();
        }
    }
    if (!valid) return;
    float *o = out + out_row(a, z, r) + h * dh, inv = 1.0f / l;
#pragma unroll
    for (int d = 0; d < DH; d++)
        if (d < dh) o[d] = acc[d] * inv;
    lse[((size_t)z * a.NH + h) * a.nq + r] = m + logf(l);
}

/* dq, and Di = dout_i . out_i for the key passes. */
template <int DH>
__global__ static void __launch_bounds__(BQ) bwd_dq(AttnShape a, float *dqkv, const float *dout, const float *out,
                                                     const float *lse, float *Di, const float *qkv, const float *bank,
                                                     const uint8_t *drop, float scale) {
    __shared__ float Ks[BK][DH], Vs[BK][DH];
    int nt = (a.nq + BQ - 1) / BQ, z = blockIdx.x / nt, h = blockIdx.y, dh = a.dh, D = a.NH * dh;
    int r = (blockIdx.x % nt) * BQ + threadIdx.x, valid = r < a.nq, rr = valid ? r : 0;
    float q[DH], g[DH], dq[DH], di = 0.0f;
    const float *qr = qkv_row(a, qkv, z, rr) + h * dh, *gr = dout + out_row(a, z, rr) + h * dh,
                *orow = out + out_row(a, z, rr) + h * dh;
#pragma unroll
    for (int d = 0; d < DH; d++) {
        q[d] = d < dh ? qr[d] : 0.0f;
        g[d] = d < dh ? gr[d] : 0.0f;
        di += d < dh ? g[d] * orow[d] : 0.0f;
        dq[d] = 0.0f;
    }
    size_t si = ((size_t)z * a.NH + h) * a.nq + rr;
    float L = lse[si];
    if (valid) Di[si] = di;
    for (int set = 0; set < 2; set++) {
        size_t ld;
        int n;
        const float *rows = key_rows(a, qkv, bank, drop, z, set, &ld, &n);
        if (!rows) break;
        for (int j0 = 0; j0 < n; j0 += BK) {
            stage<DH>(Ks, Vs, rows, ld, n, j0, D + h * dh, 2 * D + h * dh, dh);
            __syncthreads();
#pragma unroll 4
            for (int jj = 0; jj < BK; jj++) {
                if (j0 + jj >= n) break;
                float p = __expf(scale * dot<DH>(q, Ks[jj]) - L);
                float ds = p * (dot<DH>(g, Vs[jj]) - di);
#pragma unroll
                for (int d = 0; d < DH; d++) dq[d] += ds * Ks[jj][d];
            }
            __syncthreads();
        }
    }
    if (!valid) return;
    float *o = (float *)qkv_row(a, dqkv, z, r) + h * dh;
#pragma unroll
    for (int d = 0; d < DH; d++)
        if (d < dh) o[d] += scale * dq[d];
}

/* dk, dv of key row j (its k at column kcol, v at kcol + D of `rows`) from the
 * query rows of problems z0 .. z0+nz-1. */
template <int DH>
__device__ static void key_grads(const AttnShape &a, float *dk_out, float *dv_out, const float *krow, int valid,
                                 const float *dout, const float *lse, const float *Di, const float *qkv, int z0,
                                 int nz, int h, float scale, float (*Qs)[DH], float (*Gs)[DH], float *Ls, float *Ds) {
    int dh = a.dh, D = a.NH * dh;
    float k[DH], v[DH], dk[DH], dv[DH];
#pragma unroll
    for (int d = 0; d < DH; d++) {
        k[d] = d < dh ? krow[d] : 0.0f;
        v[d] = d < dh ? krow[D + d] : 0.0f;
        dk[d] = dv[d] = 0.0f;
    }
    for (int z = z0; z < z0 + nz; z++)
        for (int i0 = 0; i0 < a.nq; i0 += BK) {
            for (int e = threadIdx.x; e < BK * DH; e += blockDim.x) {
                int ii = e / DH, d = e % DH, i = i0 + ii, ok = i < a.nq && d < dh;
                Qs[ii][d] = ok ? qkv_row(a, qkv, z, i)[h * dh + d] : 0.0f;
                Gs[ii][d] = ok ? dout[out_row(a, z, i) + h * dh + d] : 0.0f;
            }
            for (int ii = threadIdx.x; ii < BK; ii += blockDim.x) {
                int i = i0 + ii;
                size_t si = ((size_t)z * a.NH + h) * a.nq + i;
                Ls[ii] = i < a.nq ? lse[si] : INFINITY; /* p = 0 for padding rows */
                Ds[ii] = i < a.nq ? Di[si] : 0.0f;
            }
            __syncthreads();
#pragma unroll 4
            for (int ii = 0; ii < BK; ii++) {
                float p = __expf(scale * dot<DH>(Qs[ii], k) - Ls[ii]);
                float ds = p * (dot<DH>(Gs[ii], v) - Ds[ii]);
#pragma unroll
                for (int d = 0; d < DH; d++) {
                    dv[d] += p * Gs[ii][d];
                    dk[d] += ds * Qs[ii][d];
                }
            }
            __syncthreads();
        }
    if (!valid) return;
#pragma unroll
    for (int d = 0; d < DH; d++)
        if (d < dh) {
            dk_out[d] += scale * dk[d];
            dv_out[d] += dv[d];
        }
}

template <int DH>
__global__ static void __launch_bounds__(BQ) bwd_dkv_own(AttnShape a, float *dqkv, const float *dout,
                                                          const float *lse, const float *Di, const float *qkv,
                                                          float scale) {
    __shared__ float Qs[BK][DH], Gs[BK][DH], Ls[BK], Ds[BK];
    int nt = (a.nq + BQ - 1) / BQ, z = blockIdx.x / nt, h = blockIdx.y, dh = a.dh, D = a.NH * dh;
    int j = (blockIdx.x % nt) * BQ + threadIdx.x, valid = j < a.nq, jj = valid ? j : 0;
    const float *krow = qkv_row(a, qkv, z, jj) + D + h * dh;
    float *g = (float *)qkv_row(a, dqkv, z, jj) + D + h * dh;
    key_grads<DH>(a, g, g + D, krow, valid, dout, lse, Di, qkv, z, 1, h, scale, Qs, Gs, Ls, Ds);
}

template <int DH>
__global__ static void __launch_bounds__(BQ) bwd_dkv_bank(AttnShape a, float *dbank, const float *dout,
                                                           const float *lse, const float *Di, const float *qkv,
                                                           const float *bank, const uint8_t *drop, float scale) {
    __shared__ float Qs[BK][DH], Gs[BK][DH], Ls[BK], Ds[BK];
    int nt = (a.nb + BQ - 1) / BQ, z1 = blockIdx.x / nt, h = blockIdx.y, dh = a.dh, D = a.NH * dh;
    if (drop && drop[z1]) return; /* the whole block agrees */
    int j = (blockIdx.x % nt) * BQ + threadIdx.x, valid = j < a.nb, jj = valid ? j : 0;
    const float *krow = bank + (size_t)z1 * a.bs1 + (size_t)jj * a.bld + D + h * dh;
    float *g = dbank + (size_t)z1 * a.bs1 + (size_t)jj * a.bld + D + h * dh;
    key_grads<DH>(a, g, g + D, krow, valid, dout, lse, Di, qkv, z1 * a.Z2, a.Z2, h, scale, Qs, Gs, Ls, Ds);
}

/* Calls body with the smallest instantiated DH that holds dh. */
#define WITH_DH(dh, body)                                                                                      \
    do {                                                                                                       \
        if ((dh) <= 16) { constexpr int DHC = 16; body; }                                                      \
        else if ((dh) <= 32) { constexpr int DHC = 32; body; }                                                 \
        else if ((dh) <= 64) { constexpr int DHC = 64; body; }                                                 \
        else if ((dh) <= 72) { constexpr int DHC = 72; body; }                                                 \
        else if ((dh) <= 128) { constexpr int DHC = 128; body; }                                               \
        else ep_die("CUDA attention: head width %d is above the supported 128", (dh));                         \
    } while (0)

/* Which kernels: ENTPROG_ATTN=fp32 the fp32 ones here (the reference),
 * tc the tensor-core ones (attention_tc.cu), cudnn cuDNN's fused flash
 * attention for problems with many rows (attention_sdpa.cu) and the warp
 * kernel for the small temporal ones (attention_temporal.cu); read at the
 * first call, tests switch with cuda_set_attention_mode. Where cuDNN refuses
 * a shape (said once), that shape runs on the tensor-core kernels. */
static int attn_mode = -1;
static int mode(void) {
    if (attn_mode < 0) {
        const char *e = getenv("ENTPROG_ATTN");
        if (!e) attn_mode = ATTN_DEFAULT;
        else if (!strcmp(e, "fp32")) attn_mode = ATTN_FP32;
        else if (!strcmp(e, "tc")) attn_mode = ATTN_TC;
        else if (!strcmp(e, "cudnn")) attn_mode = ATTN_CUDNN;
        else ep_die("ENTPROG_ATTN=%s: expected fp32, tc or cudnn", e);
    }
    return attn_mode;
}
extern "C" void cuda_set_attention_mode(int m) { attn_mode = m; }
extern "C" void cuda_set_attention_tc(int on) { attn_mode = on ? ATTN_TC : ATTN_FP32; }

extern "C" void cuda_attention(const AttnShape *a, float *out, float *state, const float *qkv, const float *bank,
                               const uint8_t *drop) {
    int Z = a->Z1 * a->Z2, nt = (a->nq + BQ - 1) / BQ, m = mode();
    if (Z == 0 || a->nq == 0) return;
    if (m == ATTN_CUDNN) {
        if (temporal_fits(a)) {
            temporal_attention(a, out, state, qkv);
            return;
        }
        if (sdpa_attention(a, out, state, qkv, bank, drop) == 0) return;
        m = ATTN_TC; /* refused: said once by sdpa_attention */
    }
    if (m == ATTN_TC && a->dh <= 128) {
        tc_attention(a, out, state, qkv, bank, drop);
        return;
    }
    float scale = 1.0f / sqrtf((float)a->dh);
    dim3 grid(Z * nt, a->NH);
    WITH_DH(a->dh, (fwd<DHC><<<grid, BQ>>>(*a, out, state, qkv, bank, drop, scale)));
    KCHECK("attention fwd");
}

/* Backward may run other kernels than forward did (a refused backward
 * graph): every path keeps the same state, the log-sum-exp of each row. */
extern "C" void cuda_attention_backward(const AttnShape *a, float *dqkv, float *dbank, const float *dout,
                                        const float *out, const float *state, const float *qkv, const float *bank,
                                        const uint8_t *drop, float *scratch) {
    int Z = a->Z1 * a->Z2, nt = (a->nq + BQ - 1) / BQ, m = mode();
    if (Z == 0 || a->nq == 0) return;
    if (m == ATTN_CUDNN) {
        if (temporal_fits(a)) {
            temporal_attention_backward(a, dqkv, dout, out, state, qkv);
            return;
        }
        if (sdpa_attention_backward(a, dqkv, dbank, dout, out, state, qkv, bank, drop) == 0) return;
        m = ATTN_TC;
    }
    if (m == ATTN_TC && a->dh <= 128) {
        tc_attention_backward(a, dqkv, dbank, dout, out, state, qkv, bank, drop, scratch);
        return;
    }
    float scale = 1.0f / sqrtf((float)a->dh);
    dim3 grid(Z * nt, a->NH);
    WITH_DH(a->dh, (bwd_dq<DHC><<<grid, BQ>>>(*a, dqkv, dout, out, state, scratch, qkv, bank, drop, scale)));
    KCHECK("attention bwd dq");
    WITH_DH(a->dh, (bwd_dkv_own<DHC><<<grid, BQ>>>(*a, dqkv, dout, state, scratch, qkv, scale)));
    KCHECK("attention bwd dkv");
    if (a->nb > 0 && dbank) {
        dim3 gb(a->Z1 * ((a->nb + BQ - 1) / BQ), a->NH);
        WITH_DH(a->dh, (bwd_dkv_bank<DHC><<<gb, BQ>>>(*a, dbank, dout, state, scratch, qkv, bank, drop, scale)));
        KCHECK("attention bwd bank");
    }
}
