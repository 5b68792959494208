/* The CUDA backend: cuda_<op> for every op of ops.h (C linkage), and its
 * device, memory and timing services. Built only when nvcc is found. */
#pragma once
#include "ops/ops.h"
#ifdef __cplusplus
extern "C" {
#endif

#define OP(name, params, args, flops) void cuda_##name params;
#include "ops/ops_list.h"
#undef OP
size_t cuda_attention_state_floats(const AttnShape *a);
double cuda_sum_squares(const float *x, size_t n);
size_t cuda_attention_scratch_floats(const AttnShape *a);

/* 0 and a description of the device when a GPU is usable, else -1 and why. */
int cuda_init(char *desc, size_t n);
void *cuda_alloc(size_t bytes, const char *what);
void cuda_free(void *p);
void cuda_upload(void *dst, const void *src, size_t bytes);
void cuda_download(void *dst, const void *src, size_t bytes);
void cuda_copy(void *dst, const void *src, size_t bytes);
void cuda_pin(void *host, size_t bytes);
void cuda_unpin(void *host);
size_t cuda_mem_in_use(void);
/* Free device memory now (cudaMemGetInfo), bytes. */
size_t cuda_mem_free(void);
size_t cuda_mem_peak(void);
void cuda_mem_reset_peak(void);
void cuda_sync(void);
/* The GEMM modes (also ENTPROG_GEMM=fp32|bf16; cuda/gemm.cu): fp32 operands in
 * memory multiplied on bf16 tensor cores (the default), plain fp32 products,
 * or both operands cast to bf16 per product and multiplied as such (not yet
 * run on a GPU). Accumulation and results are fp32 in all three. */
enum { GEMM_FAST16BF = 0, GEMM_FP32 = 1, GEMM_BF16 = 2 };
void cuda_set_gemm_mode(int mode);
/* 1: GEMM_FP32, 0: the default mode (also ENTPROG_GEMM=fp32). */
void cuda_set_exact_gemm(int on);
/* 1: tensor-core (bf16) attention kernels, 0: fp32 ones (also ENTPROG_ATTN=tc|fp32). */
void cuda_set_attention_tc(int on);
/* The attention kernels (also ENTPROG_ATTN=fp32|tc|cudnn): fp32 (the
 * reference), tensor-core, or cuDNN's fused flash attention with the warp
 * kernel for small temporal problems (cuda/attention_sdpa.cuh). */
enum { ATTN_FP32 = 0, ATTN_TC = 1, ATTN_CUDNN = 2 };
void cuda_set_attention_mode(int mode);
/* How many cuDNN attention graphs were refused so far (each then ran on the
 * tensor-core kernels; a build without the cuDNN frontend counts 1). */
int cuda_attention_cudnn_refused(void);
/* 1: the tensor-core bank backward split over frames with an in-order sum
 * (more parallel; also ENTPROG_ATTN_BANK=split), 0: one pass per bank tile. */
void cuda_set_attention_bank_split(int on);

#ifdef __cplusplus
}
#endif
