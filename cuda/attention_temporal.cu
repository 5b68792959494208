/* Attention for many small problems without a bank: the temporal attention,
 * where each spatial position's F frames (16 at the `paper` shape) attend to
 * each other. The tiled kernels spend a 64x64 tile on a 16x16 problem; here
 * one warp owns one (problem, head): it stages the problem's n <= 32 rows of
 * q, k, v (and dO) for its head in shared memory, lane i computes query row
 * i's scores and softmax in registers, and the results go back to global
 * memory through shared memory in whole rows. fp32 throughout, every sum in
 * a fixed order, no atomics (each warp owns its rows): deterministic.
 *
 * CPU reference: cpu_attention_one / cpu_attention_backward_one
 * (src/ops/attention_cpu.c): P = softmax(scale q k^T), out = P v; backward
 * dV = P^T dO, dP = dO v^T, dS = P (dP - rowsum(dO * out)), dQ = scale dS k,
 * dK = scale dS^T q. `state` keeps the log-sum-exp of each row, as the other
 * CUDA kernels do, so backward rebuilds P from it. */
#include "attention_layout.cuh"
#include "attention_sdpa.cuh"
#include "common.cuh"
#include <math.h>

#define MAXWARPS 4 /* (problem, head) items per block, fewer where shared memory is short */
#define MAXN 32    /* rows per problem: one lane each */
#define MAXDH 128
#define SMEM_MAX (160 * 1024) /* a block may have 227 KiB on Hopper, 163 KiB on A100 */

/* Shared floats per warp: rows of dh + 1 (odd stride: lane i reading row i
 * hits its own bank), 3 row sets forward; 4 and the n x (n+1) P and dS
 * backward, plus the n values of rowsum(dO * out). */
__host__ __device__ static size_t fwd_floats(int n, int dh) { return (size_t)3 * n * (dh + 1); }
__host__ __device__ static size_t bwd_floats(int n, int dh) { return (size_t)4 * n * (dh + 1) + 2 * (size_t)n * (n + 1) + n; }

int temporal_fits(const AttnShape *a) { return a->nb == 0 && a->nq <= MAXN && a->dh <= MAXDH; }

/* Copies the head's columns [h*dh, h*dh + dh) of n rows (row r at src + r*ld) into X [n][dh+1]. */
__device__ static void stage_rows(float *X, const float *src, size_t ld, int n, int dh, int lane) {
    for (int e = lane; e < n * dh; e += 32) {
        int r = e / dh, d = e % dh;
        X[r * (dh + 1) + d] = src[(size_t)r * ld + d];
    }
}

template <int NM>
__global__ static void __launch_bounds__(MAXWARPS * 32) temporal_fwd(AttnShape a, float *out, float *lse,
                                                                   const float *qkv, float scale) {
    extern __shared__ float sm[];
    int w = threadIdx.x / 32, lane = threadIdx.x % 32, item = blockIdx.x * (blockDim.x / 32) + w;
    if (item >= a.Z1 * a.Z2 * a.NH) return; /* a whole warp: only __syncwarp below */
    int n = a.nq, dh = a.dh, P = dh + 1, D = a.NH * dh, z = item / a.NH, h = item % a.NH;
    float *Q = sm + (size_t)w * fwd_floats(n, dh), *K = Q + n * P, *V = K + n * P;
    const float *rows = problem_rows(a, qkv, z) + h * dh;
    stage_rows(Q, rows, a.ld, n, dh, lane);
    stage_rows(K, rows + D, a.ld, n, dh, lane);
    stage_rows(V, rows + 2 * D, a.ld, n, dh, lane);
    __syncwarp();
    int i = lane;
    if (i < n) {
        float s[NM];
#pragma unroll
        for (int j = 0; j < NM; j++) s[j] = 0.0f;
        for (int d = 0; d < dh; d++) {
            float q = Q[i * P + d];
#pragma unroll
            for (int j = 0; j < NM; j++)
                if (j < n) s[j] += q * K[j * P + d]; /* K row j: one address for all lanes */
        }
        float m = -INFINITY, l = 0.0f;
#pragma unroll
        for (int j = 0; j < NM; j++)
            if (j < n) m = fmaxf(m, s[j] *= scale);
#pragma unroll
        for (int j = 0; j < NM; j++) {
            s[j] = j < n ? __expf(s[j] - m) : 0.0f;
            l += s[j];
        }
        float inv = 1.0f / l;
        for (int d = 0; d < dh; d++) { /* row i of Q is this lane's alone: it takes the output */
            float acc = 0.0f;
#pragma unroll
            for (int j = 0; j < NM; j++)
                if (j < n) acc += s[j] * V[j * P + d];
            Q[i * P + d] = acc * inv;
        }
        lse[((size_t)z * a.NH + h) * n + i] = m + logf(l);
    }
    __syncwarp();
    float *o = out + problem_out(a, z) + h * dh;
    for (int e = lane; e < n * dh; e += 32) {
        int r = e / dh, d = e % dh;
        o[(size_t)r * a.old + d] = Q[r * P + d];
    }
}

template <int NM>
__global__ static void __launch_bounds__(MAXWARPS * 32) temporal_bwd(AttnShape a, float *dqkv, const float *dout,
                                                                   const float *out, const float *lse,
                                                                   const float *qkv, float scale) {
    extern __shared__ float sm[];
    int w = threadIdx.x / 32, lane = threadIdx.x % 32, item = blockIdx.x * (blockDim.x / 32) + w;
    if (item >= a.Z1 * a.Z2 * a.NH) return;
    int n = a.nq, dh = a.dh, P = dh + 1, N1 = n + 1, D = a.NH * dh, z = item / a.NH, h = item % a.NH;
    float *Q = sm + (size_t)w * bwd_floats(n, dh), *K = Q + n * P, *V = K + n * P, *G = V + n * P;
    float *Pm = G + n * P, *dS = Pm + n * N1, *Di = dS + n * N1;
    const float *rows = problem_rows(a, qkv, z) + h * dh;
    const float *go = dout + problem_out(a, z) + h * dh, *oo = out + problem_out(a, z) + h * dh;
    stage_rows(Q, rows, a.ld, n, dh, lane);
    stage_rows(K, rows + D, a.ld, n, dh, lane);
    stage_rows(V, rows + 2 * D, a.ld, n, dh, lane);
    stage_rows(G, go, a.old, n, dh, lane);
    /* Di[r] = dO_r . out_r: lanes across the row, a fixed shuffle tree */
    for (int r = 0; r < n; r++) {
        float v = 0.0f;
        for (int d = lane; d < dh; d += 32) v += go[(size_t)r * a.old + d] * oo[(size_t)r * a.old + d];
        for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0) Di[r] = v;
    }
    __syncwarp();
    int i = lane;
    float p[NM], ds[NM];
    /* phase 1, lane i: row i of P (from the saved log-sum-exp) and of dS */
    if (i < n) {
        float dp[NM];
#pragma unroll
        for (int j = 0; j < NM; j++) p[j] = dp[j] = 0.0f;
        for (int d = 0; d < dh; d++) {
            float q = Q[i * P + d], g = G[i * P + d];
#pragma unroll
            for (int j = 0; j < NM; j++)
                if (j < n) p[j] += q * K[j * P + d], dp[j] += g * V[j * P + d];
        }
        float L = lse[((size_t)z * a.NH + h) * n + i], di = Di[i];
#pragma unroll
        for (int j = 0; j < NM; j++)
            if (j < n) {
                p[j] = __expf(scale * p[j] - L);
                ds[j] = p[j] * (dp[j] - di);
                Pm[i * N1 + j] = p[j];
                dS[i * N1 + j] = ds[j];
            }
    }
    __syncwarp(); /* V is free: every lane has its dP */
    /* phase 2, lane i: dQ_i = scale sum_j dS_ij k_j, into V's row i */
    if (i < n)
        for (int d = 0; d < dh; d++) {
            float acc = 0.0f;
#pragma unroll
            for (int j = 0; j < NM; j++)
                if (j < n) acc += ds[j] * K[j * P + d];
            V[i * P + d] = scale * acc;
        }
    __syncwarp(); /* K is free */
    /* phase 3, lane j: dK_j = scale sum_i dS_ij q_i, into K's row j */
    int j = lane;
    if (j < n)
        for (int d = 0; d < dh; d++) {
            float acc = 0.0f;
            for (int r = 0; r < n; r++) acc += dS[r * N1 + j] * Q[r * P + d];
            K[j * P + d] = scale * acc;
        }
    __syncwarp(); /* Q is free */
    /* phase 4, lane j: dV_j = sum_i P_ij dO_i, into Q's row j */
    if (j < n)
        for (int d = 0; d < dh; d++) {
            float acc = 0.0f;
            for (int r = 0; r < n; r++) acc += Pm[r * N1 + j] * G[r * P + d];
            Q[j * P + d] = acc;
        }
    __syncwarp();
    float *dst = (float *)problem_rows(a, dqkv, z) + h * dh; /* ops.h accumulates */
    for (int e = lane; e < n * dh; e += 32) {
        int r = e / dh, d = e % dh;
        float *row = dst + (size_t)r * a.ld + d;
        row[0] += V[r * P + d];
        row[D] += K[r * P + d];
        row[2 * D] += Q[r * P + d];
    }
}

/* Warps per block (as many as the shared memory allows, up to MAXWARPS),
 * blocks, and the kernel's consent to the shared memory. */
template <typename Kern>
static void launch_cfg(Kern k, const AttnShape *a, size_t floats_per_warp, unsigned *blocks, unsigned *threads,
                       size_t *smem) {
    size_t items = (size_t)a->Z1 * a->Z2 * a->NH, per = floats_per_warp * sizeof(float);
    unsigned w = (unsigned)(SMEM_MAX / per);
    w = w > MAXWARPS ? MAXWARPS : w < 1 ? 1 : w; /* temporal_fits keeps one warp's share under SMEM_MAX */
    *threads = 32 * w;
    *blocks = (unsigned)((items + w - 1) / w);
    *smem = w * per;
    CU(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)*smem));
}

void temporal_attention(const AttnShape *a, float *out, float *state, const float *qkv) {
    float scale = 1.0f / sqrtf((float)a->dh);
    unsigned blocks, threads;
    size_t smem;
    if (a->nq <= 16) {
        launch_cfg(temporal_fwd<16>, a, fwd_floats(a->nq, a->dh), &blocks, &threads, &smem);
        temporal_fwd<16><<<blocks, threads, smem>>>(*a, out, state, qkv, scale);
    } else {
        launch_cfg(temporal_fwd<MAXN>, a, fwd_floats(a->nq, a->dh), &blocks, &threads, &smem);
        temporal_fwd<MAXN><<<blocks, threads, smem>>>(*a, out, state, qkv, scale);
    }
    KCHECK("temporal attention fwd");
}

void temporal_attention_backward(const AttnShape *a, float *dqkv, const float *dout, const float *out,
                                 const float *state, const float *qkv) {
    float scale = 1.0f / sqrtf((float)a->dh);
    unsigned blocks, threads;
    size_t smem;
    if (a->nq <= 16) {
        launch_cfg(temporal_bwd<16>, a, bwd_floats(a->nq, a->dh), &blocks, &threads, &smem);
        temporal_bwd<16><<<blocks, threads, smem>>>(*a, dqkv, dout, out, state, qkv, scale);
    } else {
        launch_cfg(temporal_bwd<MAXN>, a, bwd_floats(a->nq, a->dh), &blocks, &threads, &smem);
        temporal_bwd<MAXN><<<blocks, threads, smem>>>(*a, dqkv, dout, out, state, qkv, scale);
    }
    KCHECK("temporal attention bwd");
}
