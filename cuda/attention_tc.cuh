/* Tensor-core (bf16 WMMA) flash attention: same contract and state as the
 * fp32 kernels of attention.cu, which choose between the two. */
#pragma once
#include "ops/ops.h"

void tc_attention(const AttnShape *a, float *out, float *state, const float *qkv, const float *bank,
                  const uint8_t *drop);
void tc_attention_backward(const AttnShape *a, float *dqkv, float *dbank, const float *dout, const float *out,
                           const float *state, const float *qkv, const float *bank, const uint8_t *drop,
                           float *scratch);
