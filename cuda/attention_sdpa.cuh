/* cuDNN's fused flash attention (SDPA) for the spatial+bank and reference
 * attention (attention_sdpa.cu: layouts, bf16 conversion, the bank's
 * gradient sum; sdpa_cudnn.cpp: the cuDNN graphs), and the warp kernel for
 * the small temporal problems (attention_temporal.cu). attention.cu picks
 * between them and today's kernels (ENTPROG_ATTN=cudnn). */
#pragma once
#include "ops/ops.h"
#include <cuda_bf16.h>
#include <stdint.h>

/* ---- the cuDNN graphs (sdpa_cudnn.cpp) ----
 * b problems of h heads; Q/O/dQ/dO are [b][sq][h*d] bf16 rows, K/V/dK/dV
 * [b][skv][h*d]; stats (the softmax log-sum-exp, natural log, of the scaled
 * scores) fp32 [b][h][sq]. With `padded`, problem i sees only its first
 * seq_kv[i] keys (seq_q[i] = sq): a dropped reference bank. */
typedef struct {
    int b, h, sq, skv, d, padded;
    float scale;
} SdpaDims;

/* 0 when cuDNN takes the forward (backward = 0) or backward graph of this
 * shape, built now if new; -1 when it refused it (the reason is printed once
 * per shape) and the caller runs other kernels. */
int cudnn_sdpa_ready(int backward, const SdpaDims *s);
/* Run the graph of a shape cudnn_sdpa_ready accepted (die on failure). */
void cudnn_sdpa_fwd(const SdpaDims *s, __nv_bfloat16 *o, float *stats, const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                   const __nv_bfloat16 *v, const int32_t *seq_q, const int32_t *seq_kv);
void cudnn_sdpa_bwd(const SdpaDims *s, __nv_bfloat16 *dq, __nv_bfloat16 *dk, __nv_bfloat16 *dv, const __nv_bfloat16 *q,
                   const __nv_bfloat16 *k, const __nv_bfloat16 *v, const __nv_bfloat16 *o, const __nv_bfloat16 *dout,
                   const float *stats, const int32_t *seq_q, const int32_t *seq_kv);

/* ---- ops.h attention on these graphs (attention_sdpa.cu): same contract
 * as cuda_attention / cuda_attention_backward, state = the log-sum-exp per
 * row as the other CUDA kernels keep it; 0 done, -1 refused (nothing written). */
int sdpa_attention(const AttnShape *a, float *out, float *state, const float *qkv, const float *bank,
                   const uint8_t *drop);
int sdpa_attention_backward(const AttnShape *a, float *dqkv, float *dbank, const float *dout, const float *out,
                            const float *state, const float *qkv, const float *bank, const uint8_t *drop);

/* ---- the temporal warp kernel (attention_temporal.cu) ----
 * Problems without a bank and at most 32 rows (the F frames of a spatial
 * position): one warp per (problem, head), fp32. */
int temporal_fits(const AttnShape *a);
void temporal_attention(const AttnShape *a, float *out, float *state, const float *qkv);
void temporal_attention_backward(const AttnShape *a, float *dqkv, const float *dout, const float *out,
                                 const float *state, const float *qkv);
