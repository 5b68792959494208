/* Tensor-core flash attention (bf16 WMMA 16x16x16, fp32 accumulation): the
 * same contract as attention.cu (per-row log-sum-exp state, backward in
 * three passes that own their outputs, no atomics, no score matrix in
 * global memory), with every product on tensor cores. A block is 4 warps of
 * 16 rows; tiles are 64 rows; the head width is padded to DP, a multiple of
 * 16, with zeros. Scores and the running output live in shared memory in
 * fp32; only the operands of the products are rounded to bf16. */
#include "attention_layout.cuh"
#include "attention_tc.cuh"
#include "common.cuh"
#include <cuda_bf16.h>
#include <math.h>
#include <mma.h>
#include <stdlib.h>
#include <string.h>

using namespace nvcuda;
typedef __nv_bfloat16 bf16;

#define WARPS 4
#define TILE 64 /* rows per tile: 4 warps x 16 */

typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> Acc;

/* Rows [r0, r0+TILE) of a strided row set, columns [c0, c0+dh), times mul, into a bf16 tile [TILE][DP]. */
template <int DP>
__device__ static void load_tile(bf16 *dst, const float *rows, size_t ld, int c0, int r0, int n, int dh, float mul) {
    for (int e = threadIdx.x; e < TILE * DP; e += blockDim.x) {
        int r = e / DP, d = e % DP;
        float v = (r0 + r < n && d < dh) ? rows[(size_t)(r0 + r) * ld + c0 + d] * mul : 0.0f;
        dst[e] = __float2bfloat16(v);
    }
}

/* C[16 x 16*NC] (fp32, row-major, ldc) = A[16 x 16*KC] (bf16 row-major, lda) . B, where B is
 * either the transpose of a row-major [16*NC x 16*KC] tile (bt = 1: K^T, Q^T) or a row-major
 * [16*KC x 16*NC] tile (bt = 0: V, K, Q, dO). */
template <int KC, int NC, int BT>
__device__ static void product(float *C, int ldc, const bf16 *A, int lda, const bf16 *Bm, int ldb) {
#pragma unroll
    for (int c = 0; c < NC; c++) {
        Acc acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int k = 0; k < KC; k++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
            wmma::load_matrix_sync(fa, A + k * 16, lda);
            if (BT) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
                wmma::load_matrix_sync(fb, Bm + (size_t)c * 16 * ldb + k * 16, ldb);
                wmma::mma_sync(acc, fa, fb, acc);
            } else {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
                wmma::load_matrix_sync(fb, Bm + (size_t)k * 16 * ldb + c * 16, ldb);
                wmma::mma_sync(acc, fa, fb, acc);
            }
        }
        wmma::store_matrix_sync(C + c * 16, acc, ldc, wmma::mem_row_major);
    }
}

/* acc[c] += A[16 x 64] (bf16, ld 64) . B[64 x DP] (bf16 row-major, ld DP) */
template <int DP>
__device__ static void accumulate(Acc *acc, const bf16 *A, const bf16 *Bm) {
#pragma unroll
    for (int c = 0; c < DP / 16; c++)
#pragma unroll
        for (int k = 0; k < TILE / 16; k++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
            wmma::load_matrix_sync(fa, A + k * 16, TILE);
            wmma::load_matrix_sync(fb, Bm + (size_t)k * 16 * DP + c * 16, DP);
            wmma::mma_sync(acc[c], fa, fb, acc[c]);
        }
}

/* Adds scale * acc (16 x dh of 16 x DP) to rows of `out` (row r at out + r*ld), r < nvalid; tmp: 16 x DP floats. */
template <int DP>
__device__ static void add_rows(float *out, size_t ld, int nvalid, int dh, float scale, Acc *acc, float *tmp) {
#pragma unroll
    for (int c = 0; c < DP / 16; c++) wmma::store_matrix_sync(tmp + c * 16, acc[c], DP, wmma::mem_row_major);
    __syncwarp();
    int lane = threadIdx.x % 32;
    for (int e = lane; e < 16 * DP; e += 32) {
        int r = e / DP, d = e % DP;
        if (r < nvalid && d < dh) out[(size_t)r * ld + d] += scale * tmp[e];
    }
    __syncwarp();
}

/* ================= forward ================= */

template <int DP>
struct FwdSmem {
    bf16 Q[TILE * DP], K[TILE * DP], V[TILE * DP], P[WARPS][16 * TILE];
    float S[WARPS][16 * (DP > TILE ? DP : TILE)], O[WARPS][16 * DP], m[TILE], l[TILE];
};

template <int DP>
__global__ static void __launch_bounds__(WARPS * 32) tc_fwd(AttnShape a, float *out, float *lse, const float *qkv,
                                                             const float *bank, const uint8_t *drop, float scale) {
    extern __shared__ __align__(128) unsigned char raw[];
    FwdSmem<DP> &s = *reinterpret_cast<FwdSmem<DP> *>(raw);
    int nt = (a.nq + TILE - 1) / TILE, z = blockIdx.x / nt, i0 = (blockIdx.x % nt) * TILE, h = blockIdx.y;
    int dh = a.dh, D = a.NH * dh, w = threadIdx.x / 32, lane = threadIdx.x % 32;
    const float *prow = problem_rows(a, qkv, z);
    load_tile<DP>(s.Q, prow, a.ld, h * dh, i0, a.nq, dh, scale);
    for (int e = threadIdx.x; e < WARPS * 16 * DP; e += blockDim.x) (&s.O[0][0])[e] = 0.0f;
    for (int r = threadIdx.x; r < TILE; r += blockDim.x) s.m[r] = -INFINITY, s.l[r] = 0.0f;
    float *S = s.S[w], *O = s.O[w];
    bf16 *P = s.P[w];
    int row = lane / 2, half = lane % 2, wr = w * 16 + row; /* two lanes per row, 32 columns each */
    for (int set = 0; set < 2; set++) {
        size_t ld;
        int n;
        const float *krows = key_rows(a, qkv, bank, drop, z, set, &ld, &n);
        if (!krows) break;
        for (int j0 = 0; j0 < n; j0 += TILE) {
            __syncthreads();
            load_tile<DP>(s.K, krows, ld, D + h * dh, j0, n, dh, 1.0f);
            load_tile<DP>(s.V, krows, ld, 2 * D + h * dh, j0, n, dh, 1.0f);
            __syncthreads();
            product<DP / 16, TILE / 16, 1>(S, TILE, s.Q + w * 16 * DP, DP, s.K, DP);
            __syncwarp();
            /* online softmax over this tile's 64 columns */
            float mx = -INFINITY, sum = 0.0f;
            for (int j = half * 32; j < half * 32 + 32; j++)
                if (j0 + j < n) mx = fmaxf(mx, S[row * TILE + j]);
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            float mold = s.m[wr], mnew = fmaxf(mold, mx), corr = __expf(mold - mnew);
            for (int j = half * 32; j < half * 32 + 32; j++) {
                float p = j0 + j < n ? __expf(S[row * TILE + j] - mnew) : 0.0f;
                P[row * TILE + j] = __float2bfloat16(p);
                sum += p;
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            for (int d = half * (DP / 2); d < (half + 1) * (DP / 2); d++) O[row * DP + d] *= corr;
            __syncwarp();
            if (half == 0) s.m[wr] = mnew, s.l[wr] = s.l[wr] * corr + sum;
            product<TILE / 16, DP / 16, 0>(S, DP, P, TILE, s.V, DP); /* S reused: P.V */
            __syncwarp();
            for (int e = lane; e < 16 * DP; e += 32) O[e] += S[e];
            __syncwarp();
        }
    }
    __syncthreads();
    for (int e = lane; e < 16 * DP; e += 32) {
        int r = e / DP, d = e % DP, i = i0 + w * 16 + r;
        if (i < a.nq && d < dh) out[problem_out(a, z) + (size_t)i * a.old + h * dh + d] = O[e] / s.l[w * 16 + r];
    }
    if (lane < 16) {
        int i = i0 + w * 16 + lane;
        if (i < a.nq) lse[((size_t)z * a.NH + h) * a.nq + i] = s.m[w * 16 + lane] + logf(s.l[w * 16 + lane]);
    }
}

/* ================= backward: dq ================= */

template <int DP>
struct DqSmem {
    bf16 Q[TILE * DP], G[TILE * DP], K[TILE * DP], V[TILE * DP], dS[WARPS][16 * TILE];
    float S[WARPS][16 * (DP > TILE ? DP : TILE)], dP[WARPS][16 * TILE], L[TILE], Di[TILE];
};

template <int DP>
__global__ static void __launch_bounds__(WARPS * 32) tc_bwd_dq(AttnShape a, float *dqkv, const float *dout,
                                                                const float *out, const float *lse, float *Di,
                                                                const float *qkv, const float *bank,
                                                                const uint8_t *drop, float scale) {
    extern __shared__ __align__(128) unsigned char raw[];
    DqSmem<DP> &s = *reinterpret_cast<DqSmem<DP> *>(raw);
    int nt = (a.nq + TILE - 1) / TILE, z = blockIdx.x / nt, i0 = (blockIdx.x % nt) * TILE, h = blockIdx.y;
    int dh = a.dh, D = a.NH * dh, w = threadIdx.x / 32, lane = threadIdx.x % 32;
    const float *prow = problem_rows(a, qkv, z);
    size_t ob = problem_out(a, z) + h * dh;
    load_tile<DP>(s.Q, prow, a.ld, h * dh, i0, a.nq, dh, 1.0f);
    load_tile<DP>(s.G, dout + ob, a.old, 0, i0, a.nq, dh, 1.0f);
    /* Di = dout_i . out_i in fp32, one warp per row */
    for (int r = w; r < TILE; r += WARPS) {
        int i = i0 + r;
        float v = 0.0f;
        if (i < a.nq)
            for (int d = lane; d < dh; d += 32) v += dout[ob + (size_t)i * a.old + d] * out[ob + (size_t)i * a.old + d];
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) {
            size_t si = ((size_t)z * a.NH + h) * a.nq + i;
            s.Di[r] = v;
            s.L[r] = i < a.nq ? lse[si] : INFINITY;
            if (i < a.nq) Di[si] = v;
        }
    }
    Acc dq[DP / 16];
#pragma unroll
    for (int c = 0; c < DP / 16; c++) wmma::fill_fragment(dq[c], 0.0f);
    float *S = s.S[w], *dP = s.dP[w];
    bf16 *dS = s.dS[w];
    int row = lane / 2, half = lane % 2, wr = w * 16 + row;
    for (int set = 0; set < 2; set++) {
        size_t ld;
        int n;
        const float *krows = key_rows(a, qkv, bank, drop, z, set, &ld, &n);
        if (!krows) break;
        for (int j0 = 0; j0 < n; j0 += TILE) {
            __syncthreads();
            load_tile<DP>(s.K, krows, ld, D + h * dh, j0, n, dh, 1.0f);
            load_tile<DP>(s.V, krows, ld, 2 * D + h * dh, j0, n, dh, 1.0f);
            __syncthreads();
            product<DP / 16, TILE / 16, 1>(S, TILE, s.Q + w * 16 * DP, DP, s.K, DP);
            product<DP / 16, TILE / 16, 1>(dP, TILE, s.G + w * 16 * DP, DP, s.V, DP);
            __syncwarp();
            float L = s.L[wr], di = s.Di[wr];
            for (int j = half * 32; j < half * 32 + 32; j++) {
                float p = j0 + j < n ? __expf(scale * S[row * TILE + j] - L) : 0.0f;
                dS[row * TILE + j] = __float2bfloat16(p * (dP[row * TILE + j] - di));
            }
            __syncwarp();
            accumulate<DP>(dq, dS, s.K);
        }
    }
    int nvalid = a.nq - (i0 + w * 16);
    add_rows<DP>((float *)problem_rows(a, dqkv, z) + (size_t)(i0 + w * 16) * a.ld + h * dh, a.ld, nvalid, dh, scale, dq, S);
}

/* ================= backward: dk, dv ================= */

template <int DP>
struct DkvSmem {
    bf16 K[TILE * DP], V[TILE * DP], Q[TILE * DP], G[TILE * DP], P[WARPS][16 * TILE], dS[WARPS][16 * TILE];
    float S[WARPS][16 * (DP > TILE ? DP : TILE)], dP[WARPS][16 * TILE], L[TILE], Di[TILE];
};

/* dK, dV of the block's 64 key rows (krows, stride kld) from the queries of problems z0..z0+nz-1. */
template <int DP>
__device__ static void key_pass(DkvSmem<DP> &s, const AttnShape &a, float *dkrows, const float *krows, size_t kld,
                                int j0, int nk, const float *dout, const float *lse, const float *Di,
                                const float *qkv, int z0, int nz, int h, float scale) {
    int dh = a.dh, D = a.NH * dh, w = threadIdx.x / 32, lane = threadIdx.x % 32;
    load_tile<DP>(s.K, krows, kld, D + h * dh, j0, nk, dh, 1.0f);
    load_tile<DP>(s.V, krows, kld, 2 * D + h * dh, j0, nk, dh, 1.0f);
    Acc dk[DP / 16], dv[DP / 16];
#pragma unroll
    for (int c = 0; c < DP / 16; c++) wmma::fill_fragment(dk[c], 0.0f), wmma::fill_fragment(dv[c], 0.0f);
    float *S = s.S[w], *dP = s.dP[w];
    bf16 *P = s.P[w], *dS = s.dS[w];
    int row = lane / 2, half = lane % 2;
    for (int z = z0; z < z0 + nz; z++)
        for (int i0 = 0; i0 < a.nq; i0 += TILE) {
            __syncthreads();
            load_tile<DP>(s.Q, problem_rows(a, qkv, z), a.ld, h * dh, i0, a.nq, dh, 1.0f);
            load_tile<DP>(s.G, dout + problem_out(a, z) + h * dh, a.old, 0, i0, a.nq, dh, 1.0f);
            for (int r = threadIdx.x; r < TILE; r += blockDim.x) {
                int i = i0 + r;
                size_t si = ((size_t)z * a.NH + h) * a.nq + i;
                s.L[r] = i < a.nq ? lse[si] : INFINITY; /* p = 0 for padding rows */
                s.Di[r] = i < a.nq ? Di[si] : 0.0f;
            }
            __syncthreads();
            /* transposed scores: rows are this warp's 16 keys, columns the tile's 64 queries */
            product<DP / 16, TILE / 16, 1>(S, TILE, s.K + w * 16 * DP, DP, s.Q, DP);
            product<DP / 16, TILE / 16, 1>(dP, TILE, s.V + w * 16 * DP, DP, s.G, DP);
            __syncwarp();
            for (int i = half * 32; i < half * 32 + 32; i++) {
                float p = __expf(scale * S[row * TILE + i] - s.L[i]);
                P[row * TILE + i] = __float2bfloat16(p);
                dS[row * TILE + i] = __float2bfloat16(p * (dP[row * TILE + i] - s.Di[i]));
            }
            __syncwarp();
            accumulate<DP>(dv, P, s.G);
            accumulate<DP>(dk, dS, s.Q);
        }
    int nvalid = nk - (j0 + w * 16);
    float *base = dkrows + (size_t)(j0 + w * 16) * kld;
    add_rows<DP>(base + D + h * dh, kld, nvalid, dh, scale, dk, S);
    add_rows<DP>(base + 2 * D + h * dh, kld, nvalid, dh, 1.0f, dv, S);
}

template <int DP>
__global__ static void __launch_bounds__(WARPS * 32) tc_bwd_dkv_own(AttnShape a, float *dqkv, const float *dout,
                                                                     const float *lse, const float *Di,
                                                                     const float *qkv, float scale) {
    extern __shared__ __align__(128) unsigned char raw[];
    DkvSmem<DP> &s = *reinterpret_cast<DkvSmem<DP> *>(raw);
    int nt = (a.nq + TILE - 1) / TILE, z = blockIdx.x / nt, j0 = (blockIdx.x % nt) * TILE, h = blockIdx.y;
    key_pass<DP>(s, a, (float *)problem_rows(a, dqkv, z), problem_rows(a, qkv, z), a.ld, j0, a.nq, dout, lse, Di, qkv, z, 1, h,
                 scale);
}

template <int DP>
__global__ static void __launch_bounds__(WARPS * 32) tc_bwd_dkv_bank(AttnShape a, float *dbank, const float *dout,
                                                                      const float *lse, const float *Di,
                                                                      const float *qkv, const float *bank,
                                                                      const uint8_t *drop, float scale) {
    extern __shared__ __align__(128) unsigned char raw[];
    DkvSmem<DP> &s = *reinterpret_cast<DkvSmem<DP> *>(raw);
    int nt = (a.nb + TILE - 1) / TILE, z1 = blockIdx.x / nt, j0 = (blockIdx.x % nt) * TILE, h = blockIdx.y;
    if (drop && drop[z1]) return; /* the whole block agrees */
    key_pass<DP>(s, a, dbank + (size_t)z1 * a.bs1, bank + (size_t)z1 * a.bs1, a.bld, j0, a.nb, dout, lse, Di, qkv,
                 z1 * a.Z2, a.Z2, h, scale);
}

/* The bank pass split over frames: block (z1, key tile, head, frame z2)
 * writes its frame's share into partial [Z2][Z1][nb][3D] (k, v columns as
 * in the bank), and bank_sum adds the Z2 shares into dbank in frame order:
 * Z2 times the parallelism of tc_bwd_dkv_bank, same result up to the order
 * of the fp32 sums, still deterministic. */
template <int DP>
__global__ static void __launch_bounds__(WARPS * 32) tc_bwd_dkv_bank_split(AttnShape a, float *partial,
                                                                            const float *dout, const float *lse,
                                                                            const float *Di, const float *qkv,
                                                                            const float *bank, const uint8_t *drop,
                                                                            float scale) {
    extern __shared__ __align__(128) unsigned char raw[];
    DkvSmem<DP> &s = *reinterpret_cast<DkvSmem<DP> *>(raw);
    int nt = (a.nb + TILE - 1) / TILE, z1 = blockIdx.x / nt, j0 = (blockIdx.x % nt) * TILE, h = blockIdx.y;
    int z2 = blockIdx.z, D3 = 3 * a.NH * a.dh;
    if (drop && drop[z1]) return;
    float *part = partial + ((size_t)z2 * a.Z1 + z1) * a.nb * D3;
    key_pass<DP>(s, a, part, bank + (size_t)z1 * a.bs1, a.bld, j0, a.nb, dout, lse, Di, qkv, z1 * a.Z2 + z2, 1, h,
                 scale);
}

__global__ static void bank_sum(float *dbank, const float *partial, AttnShape a) {
    int D = a.NH * a.dh, D3 = 3 * D;
    size_t n = (size_t)a.Z1 * a.nb * 2 * D;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(e % (2 * D));
        size_t rowz = e / (2 * D);
        int row = (int)(rowz % a.nb), z1 = (int)(rowz / a.nb);
        float sum = 0.0f;
        for (int z2 = 0; z2 < a.Z2; z2++) sum += partial[(((size_t)z2 * a.Z1 + z1) * a.nb + row) * D3 + D + c];
        dbank[(size_t)z1 * a.bs1 + (size_t)row * a.bld + D + c] += sum;
    }
}

static int bank_split = -1;
extern "C" void cuda_set_attention_bank_split(int on) { bank_split = on; }
static int use_bank_split(void) {
    if (bank_split < 0) {
        const char *e = getenv("ENTPROG_ATTN_BANK");
        bank_split = e && !strcmp(e, "split");
    }
    return bank_split;
}

/* ================= launch ================= */

#define WITH_DP(dh, ...)                                                                                       \
    do {                                                                                                       \
        if ((dh) <= 16) { constexpr int DPC = 16; __VA_ARGS__; }                                               \
        else if ((dh) <= 32) { constexpr int DPC = 32; __VA_ARGS__; }                                          \
        else if ((dh) <= 48) { constexpr int DPC = 48; __VA_ARGS__; }                                          \
        else if ((dh) <= 64) { constexpr int DPC = 64; __VA_ARGS__; }                                          \
        else if ((dh) <= 80) { constexpr int DPC = 80; __VA_ARGS__; }                                          \
        else if ((dh) <= 96) { constexpr int DPC = 96; __VA_ARGS__; }                                          \
        else { constexpr int DPC = 128; __VA_ARGS__; }                                                         \
    } while (0)

/* Shared memory above 48 KiB needs the kernel's consent. */
template <typename Kern>
static void allow_smem(Kern k, size_t smem) {
    CU(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
}

void tc_attention(const AttnShape *a, float *out, float *state, const float *qkv, const float *bank,
                  const uint8_t *drop) {
    int Z = a->Z1 * a->Z2, nt = (a->nq + TILE - 1) / TILE;
    float scale = 1.0f / sqrtf((float)a->dh);
    dim3 grid(Z * nt, a->NH);
    WITH_DP(a->dh, {
        size_t sm = sizeof(FwdSmem<DPC>);
        allow_smem(tc_fwd<DPC>, sm);
        tc_fwd<DPC><<<grid, WARPS * 32, sm>>>(*a, out, state, qkv, bank, drop, scale);
    });
    KCHECK("tensor-core attention fwd");
}

void tc_attention_backward(const AttnShape *a, float *dqkv, float *dbank, const float *dout, const float *out,
                           const float *state, const float *qkv, const float *bank, const uint8_t *drop,
                           float *scratch) {
    int Z = a->Z1 * a->Z2, nt = (a->nq + TILE - 1) / TILE;
    float scale = 1.0f / sqrtf((float)a->dh);
    dim3 grid(Z * nt, a->NH);
    WITH_DP(a->dh, {
        size_t sq = sizeof(DqSmem<DPC>), sk = sizeof(DkvSmem<DPC>);
        allow_smem(tc_bwd_dq<DPC>, sq);
        tc_bwd_dq<DPC><<<grid, WARPS * 32, sq>>>(*a, dqkv, dout, out, state, scratch, qkv, bank, drop, scale);
        KCHECK("tensor-core attention bwd dq");
        allow_smem(tc_bwd_dkv_own<DPC>, sk);
        tc_bwd_dkv_own<DPC><<<grid, WARPS * 32, sk>>>(*a, dqkv, dout, state, scratch, qkv, scale);
        KCHECK("tensor-core attention bwd dkv");
        if (a->nb > 0 && dbank && use_bank_split()) {
            int D3 = 3 * a->NH * a->dh;
            size_t np = (size_t)a->Z2 * a->Z1 * a->nb * D3;
            float *part = cuda_workspace(np, 2);
            CU(cudaMemsetAsync(part, 0, np * sizeof(float), 0));
            dim3 gb(a->Z1 * ((a->nb + TILE - 1) / TILE), a->NH, a->Z2);
            allow_smem(tc_bwd_dkv_bank_split<DPC>, sk);
            tc_bwd_dkv_bank_split<DPC><<<gb, WARPS * 32, sk>>>(*a, part, dout, state, scratch, qkv, bank, drop, scale);
            KCHECK("tensor-core attention bwd bank (split)");
            size_t n = (size_t)a->Z1 * a->nb * 2 * a->NH * a->dh;
            bank_sum<<<(unsigned)((n + 255) / 256 > 65536 ? 65536 : (n + 255) / 256), 256>>>(dbank, part, *a);
            KCHECK("bank_sum");
        } else if (a->nb > 0 && dbank) {
            dim3 gb(a->Z1 * ((a->nb + TILE - 1) / TILE), a->NH);
            allow_smem(tc_bwd_dkv_bank<DPC>, sk);
            tc_bwd_dkv_bank<DPC><<<gb, WARPS * 32, sk>>>(*a, dbank, dout, state, scratch, qkv, bank, drop, scale);
            KCHECK("tensor-core attention bwd bank");
        }
    });
}
