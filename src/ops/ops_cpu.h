/* The CPU backend (fp32): cpu_<op> for every op of ops.h, and the
 * single-problem kernels the batched ones are built from (tests call these
 * directly as the reference). */
#pragma once
#include "ops/ops.h"

#define OP(name, params, args, flops) void cpu_##name params;
#include "ops/ops_list.h"
#undef OP
size_t cpu_attention_state_floats(const AttnShape *a);
double cpu_sum_squares(const float *x, size_t n);
size_t cpu_attention_scratch_floats(const AttnShape *a);

/* One attention problem: nq queries against one or two key/value sets (rows
 * strided by ld, head h in columns h*dh..). P [NH, nq, nk1+nk2] keeps the
 * softmax; dS is scratch of nq * (nk1+nk2) floats. */
typedef struct {
    const float *k, *v; /* NULL k: the set is absent */
    int ld, n;
} KVSet;
typedef struct {
    float *dk, *dv;
} KVGrad;
void cpu_attention_one(float *out, int ldo, float *P, const float *q, int ldq, int nq, const KVSet *kv, int nsets,
                       int NH, int dh);
void cpu_attention_backward_one(float *dq, int lddq, KVGrad *dkv, const float *dout, int lddo, const float *P,
                                const float *q, int ldq, int nq, const KVSet *kv, int nsets, int NH, int dh,
                                float *dS);
/* One image [Cin,H,W] -> [Cout,Ho,Wo] through im2col (col: cpu_conv2d_col_floats) + sgemm. */
size_t cpu_conv2d_col_floats(int Cin, int Ho, int Wo, int k);
void cpu_conv2d_one(float *out, const float *in, const float *W, const float *bias, int Cin, int H, int Wd, int Cout,
                    int k, int stride, int pad, float *col);
void cpu_conv2d_backward_one(float *din, float *dW, float *db, const float *dout, const float *in, const float *W,
                             int Cin, int H, int Wd, int Cout, int k, int stride, int pad, float *col);
void cpu_patchify_one(float *tok, const float *img, int Cn, int H, int W, int p);
void cpu_patchify_backward_one(float *dimg, const float *dtok, int Cn, int H, int W, int p);
void cpu_unpatchify_final_one(float *img, const float *tok, int C, int H, int W, int p);
void cpu_unpatchify_final_backward_one(float *dtok, const float *dimg, int C, int H, int W, int p);
