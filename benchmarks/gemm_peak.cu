/* The GPU's measured dense-product peak, the denominator of MFU: an
 * M=N=K=8192 cuBLASLt product on random data, 3 warm-ups then 10 timed with
 * CUDA events, in two forms: bf16 operands and output with fp32 accumulation
 * (the chip's bf16 peak), and fp32 operands with bf16 tensor-core compute
 * (CUBLAS_COMPUTE_32F_FAST_16BF, what entprog's GEMMs use today).
 * Prints "gemm_peak_bf16_tflops=<x> gemm_fp32_fast16bf_tflops=<y>". */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CK(x) do { if ((x) != 0) { fprintf(stderr, "error %d at %s:%d: %s\n", (int)(x), __FILE__, __LINE__, #x); exit(1); } } while (0)

__global__ void fill(void *p, size_t n, int bf16, unsigned seed) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned h = (unsigned)i * 2654435761u ^ seed;
    h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
    float v = (h & 0xffff) / 32768.0f - 1.0f;
    if (bf16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16(v);
    else ((float *)p)[i] = v;
}

static double run(cublasLtHandle_t lt, int n, int bf16, void *ws, size_t wsb) {
    cudaDataType_t t = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    size_t es = bf16 ? 2 : 4, nn = (size_t)n * n;
    void *A, *B, *C;
    CK(cudaMalloc(&A, nn * es)); CK(cudaMalloc(&B, nn * es)); CK(cudaMalloc(&C, nn * es));
    fill<<<(unsigned)((nn + 255) / 256), 256>>>(A, nn, bf16, 1);
    fill<<<(unsigned)((nn + 255) / 256), 256>>>(B, nn, bf16, 2);
    cublasLtMatmulDesc_t d;
    CK(cublasLtMatmulDescCreate(&d, bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_16BF, CUDA_R_32F));
    cublasOperation_t tr = CUBLAS_OP_T, nt = CUBLAS_OP_N;
    CK(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSA, &tr, sizeof tr));
    CK(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof nt));
    cublasLtMatrixLayout_t la, lb, lc;
    CK(cublasLtMatrixLayoutCreate(&la, t, n, n, n)); CK(cublasLtMatrixLayoutCreate(&lb, t, n, n, n));
    CK(cublasLtMatrixLayoutCreate(&lc, t, n, n, n));
    cublasLtMatmulPreference_t pref;
    CK(cublasLtMatmulPreferenceCreate(&pref));
    CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
    cublasLtMatmulHeuristicResult_t r;
    int nr = 0;
    CK(cublasLtMatmulAlgoGetHeuristic(lt, d, la, lb, lc, lc, pref, 1, &r, &nr));
    if (nr == 0) { fprintf(stderr, "no algorithm\n"); exit(1); }
    float one = 1, zero = 0;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    for (int i = 0; i < 13; i++) {
        if (i == 3) CK(cudaEventRecord(e0));
        CK(cublasLtMatmul(lt, d, &one, A, la, B, lb, &zero, C, lc, C, lc, &r.algo, ws, wsb, 0));
    }
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    cudaFree(A); cudaFree(B); cudaFree(C);
    return 2.0 * n * n * (double)n * 10 / (ms * 1e-3) / 1e12;
}

int main(void) {
    cublasLtHandle_t lt;
    CK(cublasLtCreate(&lt));
    size_t wsb = 64u << 20;
    void *ws;
    CK(cudaMalloc(&ws, wsb));
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    double bf = run(lt, 8192, 1, ws, wsb), f32 = run(lt, 8192, 0, ws, wsb);
    printf("gpu=\"%s\" gemm_peak_bf16_tflops=%.1f gemm_fp32_fast16bf_tflops=%.1f\n", p.name, bf, f32);
    return 0;
}
