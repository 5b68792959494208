/* The ops interface: every numeric kernel the model and optimizer use.
 * Model code calls only these; this file's CPU implementation is fp32 with
 * OpenBLAS sgemm for every large product (ops_cpu.c, attention_cpu.c,
 * conv_cpu.c). Layouts are row-major; "rows" are tokens.
 * Backward functions ACCUMULATE (+=) into every gradient they write, so
 * residual branches and shared weights need no extra adds. */
#pragma once
#include <stddef.h>

/* out[N,O] = in[N,Ni] W[O,Ni]^T + bias[O] (bias may be NULL). */
void op_linear(float *out, const float *in, const float *W, const float *bias, int N, int Ni, int O);
/* din[N,Ni] += dout W; dW[O,Ni] += dout^T in; db[O] += colsum(dout). Any of din/dW/db may be NULL. */
void op_linear_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W,
                        int N, int Ni, int O);

/* LayerNorm without affine, eps 1e-6: xhat[N,D], and per row mean, rstd. */
void op_layernorm(float *xhat, float *mean, float *rstd, const float *x, int N, int D);
/* dx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)). */
void op_layernorm_backward(float *dx, const float *dxhat, const float *xhat, const float *rstd, int N, int D);

/* Per-sample adaLN modulation of G groups of T rows: out = x * (1 + scale[g]) + shift[g];
 * shift/scale rows of group g are at shift + g*ld, scale + g*ld. */
void op_modulate(float *out, const float *x, const float *shift, const float *scale, int ld, int G, int T, int D);
void op_modulate_backward(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                          const float *scale, int ld, int G, int T, int D);

/* z += gate[g] * y per group of T rows; backward: dy += gate * dz, dgate[g] += sum(dz * y). */
void op_gate_residual(float *z, const float *y, const float *gate, int ld, int G, int T, int D);
void op_gate_residual_backward(float *dy, float *dgate, const float *dz, const float *y, const float *gate,
                               int ld, int G, int T, int D);

/* Pointwise activations on n values; backward takes the pre-activation x. */
void op_silu(float *out, const float *x, size_t n);
void op_silu_backward(float *dx, const float *dout, const float *x, size_t n);
void op_gelu_tanh(float *out, const float *x, size_t n);
void op_gelu_tanh_backward(float *dx, const float *dout, const float *x, size_t n);

/* Multi-head softmax attention of nq queries against one or two key/value sets
 * (a frame's own tokens and a reference bank). Rows of q/k/v are strided (ld),
 * head h owns columns h*dh .. h*dh+dh-1. P [NH, nq, nk1+nk2] keeps the softmax
 * for backward. Scale 1/sqrt(dh), no mask. */
typedef struct {
    const float *k, *v; /* NULL k: the set is absent */
    int ld, n;
} KVSet;
typedef struct {
    float *dk, *dv; /* gradients for a set, same layout as k, v */
} KVGrad;
void op_attention(float *out, int ldo, float *P, const float *q, int ldq, int nq, const KVSet *kv, int nsets,
                  int NH, int dh);
/* dq += ..., dk/dv += ... . scratch needs nq * (nk1+nk2) floats. */
void op_attention_backward(float *dq, int lddq, KVGrad *dkv, const float *dout, int lddo, const float *P,
                           const float *q, int ldq, int nq, const KVSet *kv, int nsets, int NH, int dh,
                           float *scratch);

/* 2-D convolution of one image through im2col + sgemm: in [Cin,H,W] -> out [Cout,Ho,Wo],
 * square kernel k, stride, zero padding pad; col is scratch of Cin*k*k*Ho*Wo floats. */
void op_conv2d(float *out, const float *in, const float *W, const float *bias, int Cin, int H, int Wd, int Cout,
               int k, int stride, int pad, float *col);
void op_conv2d_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W,
                        int Cin, int H, int Wd, int Cout, int k, int stride, int pad, float *col);
static inline int conv_out_size(int n, int k, int stride, int pad) { return (n + 2 * pad - k) / stride + 1; }

/* Patchify [Cn,H,W] into [(H/p)(W/p), Cn*p*p] tokens (channel order c, kh, kw: a Conv2d
 * weight [D,Cn,p,p] viewed as a Linear [D, Cn*p*p]); unpatchify_final maps [S, p*p*C]
 * tokens (order prow, pcol, c) back to [C,H,W] as DiT does. Backward versions add. */
void op_patchify(float *tok, const float *img, int Cn, int H, int W, int p);
void op_patchify_backward(float *dimg, const float *dtok, int Cn, int H, int W, int p);
void op_unpatchify_final(float *img, const float *tok, int C, int H, int W, int p);
void op_unpatchify_final_backward(float *dtok, const float *dimg, int C, int H, int W, int p);
