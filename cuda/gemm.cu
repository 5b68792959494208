/* Dense products through cuBLASLt: fp32 operands in memory, bf16 tensor-core
 * multiplies (CUBLAS_COMPUTE_32F_FAST_16BF) and fp32 accumulation; the
 * forward bias rides in the epilogue. Descriptors and the chosen algorithm
 * are cached per shape, alignment and epilogue; algorithms that split K
 * with in-place (atomic) reductions are excluded so results repeat exactly. */
#include "common.cuh"
#include "cuda/ops_cuda.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, bias, accumulate, al_a, al_b, al_c, exact;
} Key;

/* Exact mode: plain fp32 products (tests use it to tell bf16 rounding from bugs). */
static int exact_mode = -1;
static int exact(void) {
    if (exact_mode < 0) {
        const char *e = getenv("ENTPROG_GEMM");
        exact_mode = e && !strcmp(e, "fp32");
    }
    return exact_mode;
}
extern "C" void cuda_set_exact_gemm(int on) { exact_mode = on; }

typedef struct {
    Key key;
    int used;
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

/* Builds descriptors and asks the heuristic for an algorithm; compute is
 * CUBLAS_COMPUTE_32F_FAST_16BF, or plain fp32 when no fast algorithm fits. */
static void make_plan(Plan *p, const Key *k) {
    cublasOperation_t opA = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opB = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    /* column-major view: C^T[N,M] = op(B^T) op(A^T) */
    int m = k->N, n = k->M, kk = k->K;
    CUBLAS(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, opA == CUBLAS_OP_N ? m : kk, opA == CUBLAS_OP_N ? kk : m,
                                      k->ldb));
    CUBLAS(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, opB == CUBLAS_OP_N ? kk : n, opB == CUBLAS_OP_N ? n : kk,
                                      k->lda));
    CUBLAS(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, m, n, k->ldc));
    cublasComputeType_t types[2] = {CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_COMPUTE_32F};
    for (int t = k->exact; t < 2; t++) {
        CUBLAS(cublasLtMatmulDescCreate(&p->desc, types[t], CUDA_R_32F));
        CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA));
        CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB));
        cublasLtEpilogue_t epi = k->bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        cublasLtMatmulPreference_t pref;
        CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
        size_t wsb;
        cuda_lt_workspace(&wsb);
        uint32_t mask = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE |
                        CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
        uint32_t al_a = k->al_b, al_b = k->al_a, al_c = k->al_c; /* A, B swap in the column-major view */
        CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
        CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask,
                                                    sizeof mask));
        CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                                    sizeof al_a));
        CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                                    sizeof al_b));
        CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                                    sizeof al_c));
        CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c,
                                                    sizeof al_c));
        cublasLtMatmulHeuristicResult_t res;
        int nres = 0;
        cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(cuda_lt(), p->desc, p->a, p->b, p->c, p->c, pref, 1, &res,
                                                           &nres);
        cublasLtMatmulPreferenceDestroy(pref);
        if (st == CUBLAS_STATUS_SUCCESS && nres > 0) {
            p->algo = res.algo;
            return;
        }
        cublasLtMatmulDescDestroy(p->desc);
    }
    ep_die("cuBLASLt has no algorithm for a %dx%dx%d product (transposes %d,%d, ld %d,%d,%d)", k->M, k->N, k->K,
           k->ta, k->tb, k->lda, k->ldb, k->ldc);
}

static Plan *find_plan(const Key *k) {
    unsigned h = key_hash(k) % NPLANS;
    for (int probe = 0; probe < NPLANS; probe++) {
        Plan *p = &plans[(h + probe) % NPLANS];
        if (p->used && !memcmp(&p->key, k, sizeof *k)) return p;
        if (!p->used) {
            p->key = *k;
            make_plan(p, k);
            p->used = 1;
            return p;
        }
    }
    ep_die("internal: cuBLASLt plan cache full (%d shapes)", NPLANS);
}

/* Row-major C[M,N] = op(A) op(B) (+ C when accumulate) (+ bias[N] per row). */
static void gemm_rm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate, const float *bias) {
    if (M == 0 || N == 0) return;
    Key k;
    memset(&k, 0, sizeof k);
    k = (Key){ta, tb, M, N, K, lda, ldb, ldc, bias != NULL, accumulate, alignment(A), alignment(B), alignment(C), exact()};
    Plan *p = find_plan(&k);
    if (bias) CUBLAS(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    size_t wsb;
    void *ws = cuda_lt_workspace(&wsb);
    CUBLAS(cublasLtMatmul(cuda_lt(), p->desc, &one, B, p->a, A, p->b, &beta, C, p->c, C, p->c, &p->algo, ws, wsb, 0));
}

__global__ static void add_bias_rows(float *out, const float *bias, size_t rows, int O) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < rows * O) out[i] += bias[i % O];
}

extern "C" void cuda_linear(float *out, const float *in, const float *W, const float *bias, int N, int Ni, int O) {
    /* the epilogue reads the bias vectorised: misaligned ones get their own pass */
    int fuse = bias && alignment(bias) >= 16;
    gemm_rm(0, 1, N, O, Ni, in, Ni, W, Ni, out, O, 0, fuse ? bias : NULL);
    if (bias && !fuse) {
        add_bias_rows<<<blocks_for((size_t)N * O, 256), 256>>>(out, bias, (size_t)N, O);
        KCHECK("add_bias_rows");
    }
}

extern "C" void cuda_linear_backward(float *din, float *dW, float *db, const float *dout, const float *in,
                                     const float *W, int N, int Ni, int O) {
    if (din) gemm_rm(0, 0, N, Ni, O, dout, O, W, Ni, din, Ni, 1, NULL);
    if (dW) gemm_rm(1, 0, O, Ni, N, dout, O, in, Ni, dW, Ni, 1, NULL);
    if (db) cuda_colsum(db, 0, dout, NULL, 1, N, O);
}

/* Row-major product for the convolution (no bias): exposed to conv.cu. */
void cuda_gemm_rm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate) {
    gemm_rm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, NULL);
}
