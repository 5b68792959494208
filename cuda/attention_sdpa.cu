/* The spatial+bank and reference attention through cuDNN's fused flash
 * attention (sdpa_cudnn.cpp), behind ops.h's attention contract. The model
 * keeps fp32 activations for now, so each call converts its operands to bf16
 * rows cuDNN reads, and back:
 *
 *   forward   pack: Q [Z][nq][D], K/V [Z][nq+nb][D] with the sample's bank
 *             rows after each frame's own (zeros where the bank is dropped,
 *             whose keys the per-problem key count seq_kv = nq leaves out);
 *             cuDNN: O and the log-sum-exp (into `state`, as the other
 *             kernels keep it); O -> out in fp32.
 *   backward  pack Q/K/V again and O, dO; cuDNN: dQ, dK, dV (bf16, written);
 *             add dQ and the own rows' dK, dV into dqkv (ops.h accumulates);
 *             the bank rows' dK, dV summed over the sample's frames in frame
 *             order (fp32, deterministic) into dbank.
 *
 * Each conversion kernel is one block per row, its threads on consecutive
 * pairs of columns (D is a multiple of 8 here). The CPU
 * reference of the whole op is cpu_attention (src/ops/attention_cpu.c);
 * test_gpu attn compares both, and the fp32 kernels of attention.cu. */
#include "attention_layout.cuh"
#include "attention_sdpa.cuh"
#include "common.cuh"
#include "cuda/ops_cuda.h"
#include <cuda_bf16.h>
#include <math.h>
#include <stdio.h>

typedef __nv_bfloat16 bf16;

/* Device buffers of the bf16 operands, each grown to the largest call seen
 * (cuda_alloc: counted in the device peak); one set serves every layer. */
typedef struct {
    void *p;
    size_t bytes;
} Buf;
static Buf bq, bk, bv, bo, bg, bdq, bdk, bdv, bseq;

static void *need(Buf *b, size_t bytes, const char *what) {
    if (bytes > b->bytes) {
        cuda_free(b->p); /* waits for the queued ops that may still read it */
        b->p = cuda_alloc(bytes, what);
        b->bytes = bytes;
    }
    return b->p;
}

/* ---- kernels: one block per row, its threads over pairs of columns ---- */

#define ROW_THREADS 128

__device__ static inline __nv_bfloat162 pair_bf16(const float *p) { return __floats2bfloat162_rn(p[0], p[1]); }
__device__ static inline float2 pair_f32(const bf16 *p) { return __bfloat1622float2(*(const __nv_bfloat162 *)p); }

/* Row r of problem z (block z*nkv + r) of Q (r < nq), K and V: the problem's
 * own row r < nq, else bank row r - nq of its sample, zeros where dropped.
 * Block 0 also writes the key counts: seq_q[z] = nq, seq_kv[z] = nq (+ nb
 * unless the bank is absent or dropped). */
__global__ static void pack_qkv(AttnShape a, int nkv, bf16 *Q, bf16 *K, bf16 *V, int32_t *seq_q, int32_t *seq_kv,
                                const float *qkv, const float *bank, const uint8_t *drop) {
    int D = a.NH * a.dh, Z = a.Z1 * a.Z2, row = blockIdx.x, z = row / nkv, r = row % nkv;
    if (row == 0)
        for (int i = threadIdx.x; i < Z; i += blockDim.x) {
            int dropped = a.nb == 0 || (drop && drop[i / a.Z2]);
            seq_q[i] = a.nq;
            seq_kv[i] = a.nq + (dropped ? 0 : a.nb);
        }
    __nv_bfloat162 *K2 = (__nv_bfloat162 *)(K + (size_t)row * D), *V2 = (__nv_bfloat162 *)(V + (size_t)row * D);
    if (r < a.nq) {
        const float *src = problem_rows(a, qkv, z) + (size_t)r * a.ld;
        __nv_bfloat162 *Q2 = (__nv_bfloat162 *)(Q + ((size_t)z * a.nq + r) * D);
        for (int c = 2 * threadIdx.x; c < D; c += 2 * blockDim.x) {
            Q2[c / 2] = pair_bf16(src + c);
            K2[c / 2] = pair_bf16(src + D + c);
            V2[c / 2] = pair_bf16(src + 2 * D + c);
        }
        return;
    }
    int z1 = z / a.Z2;
    if (drop && drop[z1]) { /* masked out by seq_kv; zeros keep 0 * garbage out of any tile */
        for (int c = 2 * threadIdx.x; c < D; c += 2 * blockDim.x) K2[c / 2] = V2[c / 2] = __floats2bfloat162_rn(0, 0);
        return;
    }
    const float *src = bank + (size_t)z1 * a.bs1 + (size_t)(r - a.nq) * a.bld;
    for (int c = 2 * threadIdx.x; c < D; c += 2 * blockDim.x) {
        K2[c / 2] = pair_bf16(src + D + c);
        V2[c / 2] = pair_bf16(src + 2 * D + c);
    }
}

/* out row r of problem z (fp32, ops.h's output layout) <- O [z][r] */
__global__ static void unpack_out(AttnShape a, float *out, const bf16 *O) {
    int D = a.NH * a.dh, row = blockIdx.x, z = row / a.nq, r = row % a.nq;
    float *dst = out + problem_out(a, z) + (size_t)r * a.old;
    const bf16 *src = O + (size_t)row * D;
    for (int c = 2 * threadIdx.x; c < D; c += 2 * blockDim.x) {
        float2 f = pair_f32(src + c);
        dst[c] = f.x, dst[c + 1] = f.y;
    }
}

/* O, dO [z][r] <- out, dout rows (O round-trips exactly: out holds the bf16
 * values forward wrote). */
__global__ static void pack_out(AttnShape a, bf16 *O, bf16 *G, const float *out, const float *dout) {
    int D = a.NH * a.dh, row = blockIdx.x, z = row / a.nq, r = row % a.nq;
    size_t o = problem_out(a, z) + (size_t)r * a.old;
    __nv_bfloat162 *O2 = (__nv_bfloat162 *)(O + (size_t)row * D), *G2 = (__nv_bfloat162 *)(G + (size_t)row * D);
    for (int c = 2 * threadIdx.x; c < D; c += 2 * blockDim.x) {
        O2[c / 2] = pair_bf16(out + o + c);
        G2[c / 2] = pair_bf16(dout + o + c);
    }
}

/* dqkv row r of problem z += [dQ | dK | dV] of that row (ops.h accumulates). */
__global__ static void add_own_grads(AttnShape a, int nkv, float *dqkv, const bf16 *dQ, const bf16 *dK,
                                     const bf16 *dV) {
    int D = a.NH * a.dh, row = blockIdx.x, z = row / a.nq, r = row % a.nq;
    float *dst = (float *)problem_rows(a, dqkv, z) + (size_t)r * a.ld;
    const bf16 *q = dQ + (size_t)row * D, *k = dK + ((size_t)z * nkv + r) * D, *v = dV + ((size_t)z * nkv + r) * D;
    for (int c = 2 * threadIdx.x; c < D; c += 2 * blockDim.x) {
        float2 fq = pair_f32(q + c), fk = pair_f32(k + c), fv = pair_f32(v + c);
        dst[c] += fq.x, dst[c + 1] += fq.y;
        dst[D + c] += fk.x, dst[D + c + 1] += fk.y;
        dst[2 * D + c] += fv.x, dst[2 * D + c + 1] += fv.y;
    }
}

/* Bank row j of sample z1 (block z1*nb + j): its k, v gradient columns in
 * dbank += the sum over frames z2 = 0, 1, ... (in this order, fp32) of the
 * dK, dV rows nq + j of problem z1*Z2 + z2; nothing for a dropped bank. */
__global__ static void sum_bank_grads(AttnShape a, int nkv, float *dbank, const bf16 *dK, const bf16 *dV,
                                      const uint8_t *drop) {
    int D = a.NH * a.dh, row = blockIdx.x, z1 = row / a.nb, j = row % a.nb;
    if (drop && drop[z1]) return;
    float *dst = dbank + (size_t)z1 * a.bs1 + (size_t)j * a.bld;
    for (int c = 2 * threadIdx.x; c < D; c += 2 * blockDim.x) {
        float kx = 0, ky = 0, vx = 0, vy = 0;
        for (int z2 = 0; z2 < a.Z2; z2++) {
            size_t kv = (((size_t)z1 * a.Z2 + z2) * nkv + a.nq + j) * D + c;
            float2 k = pair_f32(dK + kv), v = pair_f32(dV + kv);
            kx += k.x, ky += k.y, vx += v.x, vy += v.y;
        }
        dst[D + c] += kx, dst[D + c + 1] += ky;
        dst[2 * D + c] += vx, dst[2 * D + c + 1] += vy;
    }
}

/* ---- the op ---- */

/* Whether cuDNN may see this shape at all (the rest it decides itself). */
static int sdpa_shape_ok(const AttnShape *a) {
    static int said;
    if (a->dh % 8 == 0 && a->dh <= 256) return 1;
    if (!said)
        fprintf(stderr, "attention: head width %d is not a multiple of 8 up to 256, as cuDNN's fused attention needs: "
                        "it runs on the tensor-core kernels\n", a->dh);
    said = 1;
    return 0;
}

static SdpaDims dims_of(const AttnShape *a) {
    SdpaDims s = {a->Z1 * a->Z2, a->NH, a->nq, a->nq + a->nb, a->dh, a->nb > 0, 1.0f / sqrtf((float)a->dh)};
    return s;
}

/* What forward and backward both hand cuDNN: Q, K, V (the bank rows after
 * each frame's own keys) and the key counts in bf16 scratch, and O's scratch. */
typedef struct {
    size_t Z, nq, nkv; /* problems, elements of Q (and O), of K (and V) */
    bf16 *Q, *K, *V, *O;
    int32_t *seq_q, *seq_kv; /* [Z] query counts, [Z] key counts */
} Staged;

static Staged stage_qkv(const AttnShape *a, const SdpaDims *s, const float *qkv, const float *bank,
                        const uint8_t *drop) {
    Staged t;
    size_t D = (size_t)a->NH * a->dh;
    t.Z = (size_t)s->b, t.nq = t.Z * s->sq * D, t.nkv = t.Z * s->skv * D;
    t.Q = (bf16 *)need(&bq, t.nq * sizeof(bf16), "attention: bf16 Q");
    t.K = (bf16 *)need(&bk, t.nkv * sizeof(bf16), "attention: bf16 K");
    t.V = (bf16 *)need(&bv, t.nkv * sizeof(bf16), "attention: bf16 V");
    t.O = (bf16 *)need(&bo, t.nq * sizeof(bf16), "attention: bf16 O");
    /* seq_kv starts 16 bytes aligned: the frontend declares every tensor 16-byte aligned
     * (CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT), and seq + Z is not when Z % 4 != 0 */
    size_t Zp = (t.Z + 3) / 4 * 4;
    t.seq_q = (int32_t *)need(&bseq, 2 * Zp * sizeof(int32_t), "attention: key counts");
    t.seq_kv = t.seq_q + Zp;
    pack_qkv<<<(unsigned)(t.Z * s->skv), ROW_THREADS>>>(*a, s->skv, t.Q, t.K, t.V, t.seq_q, t.seq_kv, qkv, bank,
                                                         drop);
    KCHECK("attention pack_qkv");
    return t;
}

int sdpa_attention(const AttnShape *a, float *out, float *state, const float *qkv, const float *bank,
                   const uint8_t *drop) {
    if (!sdpa_shape_ok(a)) return -1;
    SdpaDims s = dims_of(a);
    if (cudnn_sdpa_ready(0, &s) != 0) return -1;
    Staged t = stage_qkv(a, &s, qkv, bank, drop);
    cudnn_sdpa_fwd(&s, t.O, state, t.Q, t.K, t.V, t.seq_q, t.seq_kv);
    unpack_out<<<(unsigned)(t.Z * s.sq), ROW_THREADS>>>(*a, out, t.O);
    KCHECK("attention unpack_out");
    return 0;
}

int sdpa_attention_backward(const AttnShape *a, float *dqkv, float *dbank, const float *dout, const float *out,
                            const float *state, const float *qkv, const float *bank, const uint8_t *drop) {
    if (!sdpa_shape_ok(a)) return -1;
    SdpaDims s = dims_of(a);
    if (cudnn_sdpa_ready(1, &s) != 0) return -1;
    Staged t = stage_qkv(a, &s, qkv, bank, drop);
    bf16 *G = (bf16 *)need(&bg, t.nq * sizeof(bf16), "attention: bf16 dO"),
         *dQ = (bf16 *)need(&bdq, t.nq * sizeof(bf16), "attention: bf16 dQ"),
         *dK = (bf16 *)need(&bdk, t.nkv * sizeof(bf16), "attention: bf16 dK"),
         *dV = (bf16 *)need(&bdv, t.nkv * sizeof(bf16), "attention: bf16 dV");
    pack_out<<<(unsigned)(t.Z * s.sq), ROW_THREADS>>>(*a, t.O, G, out, dout);
    KCHECK("attention pack_out");
    cudnn_sdpa_bwd(&s, dQ, dK, dV, t.Q, t.K, t.V, t.O, G, state, t.seq_q, t.seq_kv);
    add_own_grads<<<(unsigned)(t.Z * s.sq), ROW_THREADS>>>(*a, s.skv, dqkv, dQ, dK, dV);
    KCHECK("attention add_own_grads");
    if (a->nb > 0 && dbank) {
        sum_bank_grads<<<(unsigned)(a->Z1 * a->nb), ROW_THREADS>>>(*a, s.skv, dbank, dK, dV, drop);
        KCHECK("attention sum_bank_grads");
    }
    return 0;
}
