/* Shared by the CUDA backend's files: error checks, launch sizes, and the
 * backend-private workspace (cuBLASLt workspace, reduction partials). */
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stddef.h>

extern "C" void ep_die(const char *fmt, ...) __attribute__((noreturn));

#define CU(call)                                                                                       \
    do {                                                                                               \
        cudaError_t e_ = (call);                                                                       \
        if (e_ != cudaSuccess) ep_die("CUDA: %s failed at %s:%d: %s", #call, __FILE__, __LINE__,       \
                                      cudaGetErrorString(e_));                                         \
    } while (0)
#define CUBLAS(call)                                                                                   \
    do {                                                                                               \
        cublasStatus_t s_ = (call);                                                                    \
        if (s_ != CUBLAS_STATUS_SUCCESS) ep_die("cuBLAS: %s failed at %s:%d: status %d", #call,        \
                                                __FILE__, __LINE__, (int)s_);                          \
    } while (0)
/* Launch errors surface at the next call; checking here names the kernel. */
#define KCHECK(name)                                                                                   \
    do {                                                                                               \
        cudaError_t e_ = cudaGetLastError();                                                           \
        if (e_ != cudaSuccess) ep_die("CUDA kernel %s: %s", name, cudaGetErrorString(e_));            \
    } while (0)

static inline unsigned blocks_for(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

/* Device scratch owned by the backend, grown on demand (never inside a capture). */
float *cuda_workspace(size_t floats, int slot);
cublasLtHandle_t cuda_lt(void);
void *cuda_lt_workspace(size_t *bytes);
/* Deterministic sums over the T rows of each of G groups, per column:
 * out[g*ld + c] += sum_t a[(g*T+t)*D + c] * (b ? b[(g*T+t)*D + c] : 1). */
void cuda_colsum(float *out, int ld, const float *a, const float *b, int G, int T, int D);
void cuda_gemm_rm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate);
