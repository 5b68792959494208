/* Dense products through cuBLASLt, fp32 storage and accumulation, in one of
 * three modes (ENTPROG_GEMM, or cuda_set_gemm_mode):
 *  - default: fp32 operands in memory, bf16 tensor-core multiplies
 *    (CUBLAS_COMPUTE_32F_FAST_16BF);
 *  - fp32: plain fp32 products (tests use it to tell bf16 rounding from bugs);
 *  - bf16: each product first casts both operands to bf16 (round to nearest
 *    even) into a workspace of this file and multiplies true bf16 operands
 *    (CUDA_R_16BF, CUBLAS_COMPUTE_32F): on an H200, cuBLASLt's 8192^3 product
 *    reached 815 TFLOP/s with bf16 operands against 429 with fp32 ones.
 * The forward bias rides in the epilogue, in bf16 mode also fc1's GELU
 * (op linear_gelu) and, in backward, its derivative in fc2's din product
 * (op linear_backward_dgelu). Descriptors and the chosen algorithm are cached per mode,
 * shape, alignment and epilogue; algorithms that split K with in-place
 * (atomic) reductions are excluded so results repeat exactly. */
#include "common.cuh"
#include "cuda/ops_cuda.h"
#include <cuda_bf16.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The GELU epilogues (Key.gelu): forward writes gelu(D) and D's input as aux;
 * backward multiplies D by gelu'(aux). */
enum { GELU_NONE, GELU_FWD, GELU_BWD };

typedef struct {
    int mode, ta, tb, M, N, K, lda, ldb, ldc, bias, gelu, accumulate, al_a, al_b, al_c, al_aux;
} Key;

static int gemm_mode = -1;
static int mode(void) {
    if (gemm_mode < 0) {
        const char *e = getenv("ENTPROG_GEMM");
        if (!e || !*e) gemm_mode = GEMM_FAST16BF;
        else if (!strcmp(e, "fp32")) gemm_mode = GEMM_FP32;
        else if (!strcmp(e, "bf16")) gemm_mode = GEMM_BF16;
        else ep_die("ENTPROG_GEMM=%s: expected fp32 or bf16 (unset: fp32 operands on bf16 tensor cores)", e);
    }
    return gemm_mode;
}
extern "C" void cuda_set_gemm_mode(int m) { gemm_mode = m; }
extern "C" void cuda_set_exact_gemm(int on) { gemm_mode = on ? GEMM_FP32 : GEMM_FAST16BF; }

typedef struct {
    Key key;
    int used;
    int refused; /* bf16 mode only: cuBLASLt had no algorithm, so no descriptors */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
} Plan;

#define NPLANS 1024
static Plan plans[NPLANS];

static int alignment(const void *p) {
    uintptr_t u = (uintptr_t)p;
    int a = 4;
    while (a < 256 && u % (2 * a) == 0) a *= 2;
    return a;
}

static unsigned key_hash(const Key *k) {
    const unsigned *w = (const unsigned *)k;
    unsigned h = 2166136261u;
    for (size_t i = 0; i < sizeof *k / sizeof *w; i++) h = (h ^ w[i]) * 16777619u;
    return h;
}

/* Creates p->desc for compute type ct over p's layouts and asks the heuristic
 * for one algorithm; 0, and no descriptor, when it has none. aux: where the
 * GELU epilogue writes its input, or the DGELU one reads it (the heuristic
 * reads its alignment). */
static int plan_try(Plan *p, const Key *k, cublasComputeType_t ct, const float *aux) {
    cublasOperation_t opA = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opB = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS(cublasLtMatmulDescCreate(&p->desc, ct, CUDA_R_32F));
    CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA));
    CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB));
    /* DGELU, not DGELU_BGRAD: cuBLASLt's bias gradient would overwrite, and fc1's
     * bias also gathers the reference pass's gradient (its own linear_backward adds it) */
    cublasLtEpilogue_t epi = k->gelu == GELU_FWD ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS
                             : k->gelu == GELU_BWD ? CUBLASLT_EPILOGUE_DGELU
                             : k->bias ? CUBLASLT_EPILOGUE_BIAS
                                       : CUBLASLT_EPILOGUE_DEFAULT;
    CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (k->gelu) { /* the GELU input, fp32 like D (the default aux type), laid out as D */
        int64_t ld = k->ldc;
        CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld));
        CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux));
    }
    cublasLtMatmulPreference_t pref;
    CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
    size_t wsb;
    cuda_lt_workspace(&wsb);
    uint32_t mask = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE |
                    CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
    uint32_t al_a = k->al_b, al_b = k->al_a, al_c = k->al_c; /* A, B swap in the column-major view */
    CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
    CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof mask));
    CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
    CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
    CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof al_c));
    CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c));
    cublasLtMatmulHeuristicResult_t res;
    int nres = 0;
    cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(cuda_lt(), p->desc, p->a, p->b, p->c, p->c, pref, 1, &res, &nres);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st == CUBLAS_STATUS_SUCCESS && nres > 0) {
        p->algo = res.algo;
        return 1;
    }
    cublasLtMatmulDescDestroy(p->desc);
    return 0;
}

/* Builds descriptors and an algorithm. Default mode: CUBLAS_COMPUTE_32F_FAST_16BF,
 * or plain fp32 when no fast algorithm fits; fp32 mode: plain fp32; bf16 mode:
 * bf16 A and B, or the plan is refused (said once, here: a plan is made once
 * per shape) and the caller runs the product another way. */
static void make_plan(Plan *p, const Key *k, const float *aux) {
    cublasOperation_t opA = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opB = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cudaDataType_t ab = k->mode == GEMM_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    /* column-major view: C^T[N,M] = op(B^T) op(A^T) */
    int m = k->N, n = k->M, kk = k->K;
    CUBLAS(cublasLtMatrixLayoutCreate(&p->a, ab, opA == CUBLAS_OP_N ? m : kk, opA == CUBLAS_OP_N ? kk : m, k->ldb));
    CUBLAS(cublasLtMatrixLayoutCreate(&p->b, ab, opB == CUBLAS_OP_N ? kk : n, opB == CUBLAS_OP_N ? n : kk, k->lda));
    CUBLAS(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, m, n, k->ldc));
    if (k->mode == GEMM_BF16) {
        if (plan_try(p, k, CUBLAS_COMPUTE_32F, aux)) return;
        cublasLtMatrixLayoutDestroy(p->a);
        cublasLtMatrixLayoutDestroy(p->b);
        cublasLtMatrixLayoutDestroy(p->c);
        p->refused = 1;
        if (k->gelu == GELU_FWD)
            fprintf(stderr, "gemm: cuBLASLt has no bf16 algorithm with the GELU epilogue for a %dx%dx%d product: "
                            "linear_gelu runs as a bf16 linear, then the GELU kernel\n", k->M, k->N, k->K);
        else if (k->gelu == GELU_BWD)
            fprintf(stderr, "gemm: cuBLASLt has no bf16 algorithm with the DGELU epilogue for a %dx%dx%d product: "
                            "linear_backward_dgelu runs as a bf16 linear_backward, then the GELU-gradient "
                            "kernel\n", k->M, k->N, k->K);
        else
            fprintf(stderr, "gemm: cuBLASLt has no bf16 algorithm for a %dx%dx%d product (transposes %d,%d, "
                            "ldc %d%s%s): it runs in the default mode (fp32 operands, "
                            "CUBLAS_COMPUTE_32F_FAST_16BF)\n", k->M, k->N, k->K, k->ta, k->tb, k->ldc,
                    k->bias ? ", bias" : "", k->accumulate ? ", accumulating" : "");
        return;
    }
    if (k->mode != GEMM_FP32 && plan_try(p, k, CUBLAS_COMPUTE_32F_FAST_16BF, aux)) return;
    if (plan_try(p, k, CUBLAS_COMPUTE_32F, aux)) return;
    ep_die("cuBLASLt has no algorithm for a %dx%dx%d product (transposes %d,%d, ld %d,%d,%d)", k->M, k->N, k->K,
           k->ta, k->tb, k->lda, k->ldb, k->ldc);
}

static Plan *find_plan(const Key *k, const float *aux) {
    unsigned h = key_hash(k) % NPLANS;
    for (int probe = 0; probe < NPLANS; probe++) {
        Plan *p = &plans[(h + probe) % NPLANS];
        if (p->used && !memcmp(&p->key, k, sizeof *k)) return p;
        if (!p->used) {
            p->key = *k;
            make_plan(p, k, aux);
            p->used = 1;
            return p;
        }
    }
    ep_die("internal: cuBLASLt plan cache full (%d shapes)", NPLANS);
}

static void run_plan(Plan *p, const void *A, const void *B, float *C, int accumulate, const float *bias,
                     const float *aux) {
    if (bias) CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    if (aux)
        CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux));
    float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    size_t wsb;
    void *ws = cuda_lt_workspace(&wsb);
    CUBLAS(cublasLtMatmul(cuda_lt(), p->desc, &one, B, p->a, A, p->b, &beta, C, p->c, C, p->c, &p->algo, ws, wsb, 0));
}

/* ---- bf16 mode: the operand casts ----
 * Every product casts its operands again, weights included. That keeps the
 * mode stateless: no copy of a weight can be stale after AdamW, a load or
 * the trials search writes the fp32 one. The cast costs a read of the fp32
 * operand and a write of half its size per product; a bf16 mirror of the
 * weights written by AdamW (and bf16 activations) is the later step. */

/* Two values rounded to bf16 (nearest even), lo first in memory, as one word. */
__device__ static unsigned bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    unsigned u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* dst[r*cols + c] = bf16(src[r*ld + c]), round to nearest even; 8 values per
 * thread, as two 16-byte loads and one 16-byte store where vec says the
 * addresses allow it (else, and for a row's tail, one value at a time). */
__global__ static void cast_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t rows, size_t cols, size_t ld,
                                        int vec) {
    size_t per_row = (cols + 7) / 8, i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= rows * per_row) return;
    size_t r = i / per_row, c = (i % per_row) * 8;
    const float *s = src + r * ld + c;
    __nv_bfloat16 *d = dst + r * cols + c;
    if (vec && c + 8 <= cols) {
        float4 x = ((const float4 *)s)[0], y = ((const float4 *)s)[1];
        /* __stwb: nvcc 13 splits a plain uint4 store here into four 4-byte ones */
        __stwb((uint4 *)d, make_uint4(bf16x2(x.x, x.y), bf16x2(x.z, x.w), bf16x2(y.x, y.y), bf16x2(y.z, y.w)));
    } else {
        for (size_t j = 0; j < 8 && c + j < cols; j++) d[j] = __float2bfloat16_rn(s[j]);
    }
}

/* dst (dense, 256-byte aligned) := bf16 of the rows x cols matrix at src with row stride ld. */
static void cast_bf16(__nv_bfloat16 *dst, const float *src, int rows, int cols, int ld) {
    size_t r = rows, c = cols;
    if (ld == cols) c *= r, r = 1; /* dense: one long row */
    int vec = alignment(src) >= 16 && (r == 1 || (ld % 4 == 0 && c % 8 == 0));
    size_t chunks = r * ((c + 7) / 8);
    if (!chunks) return;
    cast_bf16_kernel<<<blocks_for(chunks, 256), 256>>>(dst, src, r, c, (size_t)ld, vec);
    KCHECK("cast_bf16");
}

/* The bf16 copies of one product's two operands: one allocation, grown
 * (never shrunk) when a product needs more; B starts 256 bytes aligned. */
static __nv_bfloat16 *ops16;
static size_t ops16_bytes;

static void bf16_operands(size_t na, size_t nb, __nv_bfloat16 **a16, __nv_bfloat16 **b16) {
    size_t off = (na * sizeof(__nv_bfloat16) + 255) / 256 * 256, need = off + nb * sizeof(__nv_bfloat16);
    if (need > ops16_bytes) {
        CU(cudaDeviceSynchronize()); /* a queued product may still read the old copies */
        cuda_free(ops16);
        ops16 = (__nv_bfloat16 *)cuda_alloc(need, "bf16 GEMM operands (ENTPROG_GEMM=bf16)");
        ops16_bytes = need;
    }
    *a16 = ops16;
    *b16 = (__nv_bfloat16 *)((char *)ops16 + off);
}

/* The product in bf16 mode: 1 done, 0 refused (nothing ran). */
static int gemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                     int ldc, int accumulate, const float *bias, int gelu, const float *aux) {
    static int said;
    if (!said) {
        said = 1;
        fprintf(stderr, "gemm: ENTPROG_GEMM=bf16: both operands of every product cast to bf16, cuBLASLt "
                        "CUBLAS_COMPUTE_32F into fp32\n");
    }
    /* the stored shapes of op(A) [M,K] and op(B) [K,N], copied densely */
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    __nv_bfloat16 *a16, *b16;
    bf16_operands((size_t)ar * ac, (size_t)br * bc, &a16, &b16);
    Key k = {GEMM_BF16, ta, tb, M, N, K, ac, bc, ldc, bias != NULL, gelu, accumulate,
             alignment(a16), alignment(b16), alignment(C), aux ? alignment(aux) : 0};
    Plan *p = find_plan(&k, aux);
    if (p->refused) return 0;
    cast_bf16(a16, A, ar, ac, lda);
    cast_bf16(b16, B, br, bc, ldb);
    run_plan(p, a16, b16, C, accumulate, bias, aux);
    return 1;
}

/* Row-major C[M,N] = op(A) op(B) (+ C when accumulate) (+ bias[N] per row).
 * With a GELU epilogue (bf16 mode only; aux [M,N] with row stride ldc):
 * GELU_FWD: aux = that, C = gelu_tanh(that); GELU_BWD: C = that *
 * gelu_tanh'(aux). Returns 0, and runs nothing, when cuBLASLt cannot. */
static int gemm_rm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                   int ldc, int accumulate, const float *bias, int gelu, const float *aux) {
    if (M == 0 || N == 0) return 1;
    if (mode() == GEMM_BF16) {
        if (gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, gelu, aux)) return 1;
        if (gelu) return 0;
        /* refused: the default mode's product below */
    }
    int md = mode() == GEMM_FP32 ? GEMM_FP32 : GEMM_FAST16BF;
    Key k = {md, ta, tb, M, N, K, lda, ldb, ldc, bias != NULL, 0, accumulate, alignment(A), alignment(B),
             alignment(C), 0};
    run_plan(find_plan(&k, NULL), A, B, C, accumulate, bias, NULL);
    return 1;
}

__global__ static void add_bias_rows(float *out, const float *bias, size_t rows, int O) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < rows * O) out[i] += bias[i % O];
}

extern "C" void cuda_linear(float *out, const float *in, const float *W, const float *bias, int N, int Ni, int O) {
    /* the epilogue reads the bias vectorised: misaligned ones get their own pass */
    int fuse = bias && alignment(bias) >= 16;
    gemm_rm(0, 1, N, O, Ni, in, Ni, W, Ni, out, O, 0, fuse ? bias : NULL, GELU_NONE, NULL);
    if (bias && !fuse) {
        add_bias_rows<<<blocks_for((size_t)N * O, 256), 256>>>(out, bias, (size_t)N, O);
        KCHECK("add_bias_rows");
    }
}

/* h = in W^T + bias, g = gelu_tanh(h). In bf16 mode one product writes both
 * through cuBLASLt's GELU_AUX_BIAS epilogue (its GELU is the tanh form, the
 * model's; docs/gpu.md says how that was established), when the epilogue can
 * take the operands: a 16-byte aligned bias and h, O a multiple of 8 (the
 * aux ld), an algorithm. Otherwise the linear, then the GELU kernel. */
extern "C" void cuda_linear_gelu(float *h, float *g, const float *in, const float *W, const float *bias, int N,
                                 int Ni, int O) {
    if (mode() == GEMM_BF16 && bias && alignment(bias) >= 16 && alignment(h) >= 16 && O % 8 == 0 &&
        gemm_rm(0, 1, N, O, Ni, in, Ni, W, Ni, g, O, 0, bias, GELU_FWD, h))
        return;
    cuda_linear(h, in, W, bias, N, Ni, O);
    cuda_gelu_tanh(g, h, (size_t)N * O);
}

extern "C" void cuda_linear_backward(float *din, float *dW, float *db, const float *dout, const float *in,
                                     const float *W, int N, int Ni, int O) {
    if (din) gemm_rm(0, 0, N, Ni, O, dout, O, W, Ni, din, Ni, 1, NULL, GELU_NONE, NULL);
    if (dW) gemm_rm(1, 0, O, Ni, N, dout, O, in, Ni, dW, Ni, 1, NULL, GELU_NONE, NULL);
    if (db) cuda_colsum(db, 0, dout, NULL, 1, N, O);
}

/* fc2's backward through the GELU before it: dW += dout^T in, db += colsum(dout),
 * dh := (dout W) * gelu_tanh'(h). In bf16 mode dh is one product with the
 * DGELU epilogue (aux = h, read as D is laid out; beta 0, so dh is written and
 * needs no zeroing) when it can take the operands: 16-byte aligned h and dh,
 * Ni a multiple of 8 (the aux ld), an algorithm. Otherwise, and in the other
 * modes, the unfused ops through scratch, as the CPU runs them. */
extern "C" void cuda_linear_backward_dgelu(float *dh, float *dW, float *db, const float *dout, const float *in,
                                           const float *W, const float *h, float *scratch, int N, int Ni, int O) {
    if (mode() == GEMM_BF16) {
        if (alignment(h) >= 16 && alignment(dh) >= 16 && Ni % 8 == 0) {
            if (gemm_rm(0, 0, N, Ni, O, dout, O, W, Ni, dh, Ni, 0, NULL, GELU_BWD, h)) {
                cuda_linear_backward(NULL, dW, db, dout, in, W, N, Ni, O);
                return;
            } /* refused: make_plan said so */
        } else {
            static int said;
            if (!said) {
                said = 1;
                fprintf(stderr, "gemm: the DGELU epilogue needs 16-byte aligned h and dh and Ni %% 8 == 0 (Ni %d): "
                                "linear_backward_dgelu runs as a bf16 linear_backward, then the GELU-gradient "
                                "kernel\n", Ni);
            }
        }
    }
    size_t n = (size_t)N * Ni;
    cuda_zero(scratch, n);
    cuda_linear_backward(scratch, dW, db, dout, in, W, N, Ni, O);
    cuda_zero(dh, n);
    cuda_gelu_tanh_backward(dh, scratch, h, n);
}

/* Row-major product for the convolution (no bias): exposed to conv.cu. */
void cuda_gemm_rm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate) {
    gemm_rm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, NULL, GELU_NONE, NULL);
}
