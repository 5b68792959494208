/* The ops interface: every numeric kernel the model uses, and the memory it
 * runs on. Model code calls only these, so it does not care which backend
 * runs: the CPU one (fp32, OpenBLAS sgemm for every large product; ops_cpu.c,
 * attention_cpu.c, conv_cpu.c) or the CUDA one (cuda/: cuBLASLt with bf16
 * tensor-core products and fp32 accumulation, fused element-wise kernels,
 * flash-style attention). ops.c dispatches on the backend chosen at start.
 * Layouts are row-major; "rows" are tokens. Every pointer an op takes lives
 * in backend memory (ops_alloc). Backward functions ACCUMULATE (+=) into
 * every gradient they write, so residual branches and shared weights need
 * no extra adds. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- backend and its memory ---- */
typedef enum { BACKEND_CPU = 0, BACKEND_CUDA = 1 } Backend;
/* Picks the backend for the whole run; dies with a clear message when CUDA
 * was not built or no GPU is usable. */
void ops_select(Backend b);
void ops_select_named(const char *name); /* "cpu" or "cuda" (the deck's train.backend) */
/* Answers size queries (op_*_floats, ops_host_memory) as backend b would,
 * without initialising it, for memory plans on a machine without that
 * device; no op or allocation may run until a real ops_select. */
void ops_assume(Backend b);
Backend ops_backend(void);
const char *ops_backend_name(void);
/* One line naming the device (the CPU threads, or the GPU and its memory). */
const char *ops_device_desc(void);
int ops_cuda_built(void);
/* 1 when backend memory is host memory that host code may use directly
 * (the CPU backend). 0 on CUDA, and on the CPU with ENTPROG_SIM_DEVICE=1:
 * a test mode in which the CPU backend keeps its own copies as a GPU would,
 * so every upload/download path runs (and must give identical results). */
int ops_host_memory(void);
void *ops_alloc(size_t bytes, const char *what); /* zeroed; dies naming `what` */
void ops_free(void *p);
void ops_upload(void *dst, const void *host_src, size_t bytes);
void ops_download(void *host_dst, const void *src, size_t bytes);
void ops_copy(void *dst, const void *src, size_t bytes); /* within backend memory */
/* Page-locks a host buffer that crosses to the device every step (faster
 * copies on CUDA; nothing on the CPU); unpin before freeing it. */
void ops_pin(void *host, size_t bytes);
void ops_unpin(void *host);
/* Backend memory in use and its peak (on the CPU the counting allocator's). */
size_t ops_mem_in_use(void);
/* Device memory free now (CUDA); 0 on the CPU, whose limit is the host's. */
size_t ops_device_free(void);
size_t ops_mem_peak(void);
void ops_mem_reset_peak(void);
void ops_sync(void); /* waits for every queued op (timing) */
double ops_flops(void); /* model FLOPs of every product dispatched so far */
/* ops_count_flops(0) ... ops_count_flops(1) brackets recomputation: its
 * products are not model FLOPs (the MFU convention); brackets nest. */
void ops_count_flops(int on);
/* ENTPROG_PROFILE=1 times every op (waiting for the device around each);
 * the report is a markdown table of time per op, largest first. */
int ops_profiling(void);
void ops_profile_report(FILE *out);

/* ---- dense ---- */
/* out[N,O] = in[N,Ni] W[O,Ni]^T + bias[O] (bias may be NULL). */
void op_linear(float *out, const float *in, const float *W, const float *bias, int N, int Ni, int O);
/* h = the linear above, g = gelu_tanh(h): one op so that a GPU can fuse the
 * GELU into the product's epilogue; the CPU runs the two ops, bit for bit. */
void op_linear_gelu(float *h, float *g, const float *in, const float *W, const float *bias, int N, int Ni, int O);
/* din[N,Ni] += dout W; dW[O,Ni] += dout^T in; db[O] += colsum(dout). Any of din/dW/db may be NULL. */
void op_linear_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W,
                        int N, int Ni, int O);
/* fc2's backward through the GELU in front of it, h its input (g = gelu_tanh(h) = in):
 * dW += dout^T in, db += colsum(dout) (either may be NULL), and dh[N,Ni] :=
 * (dout W) * gelu_tanh'(h), written, not added. One op so that a GPU can fuse
 * the GELU gradient into the din product's epilogue; the CPU runs
 * linear_backward into scratch[N,Ni] then gelu_tanh_backward, bit for bit. */
void op_linear_backward_dgelu(float *dh, float *dW, float *db, const float *dout, const float *in, const float *W,
                              const float *h, float *scratch, int N, int Ni, int O);

/* ---- normalisation and modulation ---- */
/* LayerNorm without affine, eps 1e-6: xhat[N,D], and per row mean, rstd. */
void op_layernorm(float *xhat, float *mean, float *rstd, const float *x, int N, int D);
/* dx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)). */
void op_layernorm_backward(float *dx, const float *dxhat, const float *xhat, const float *rstd, int N, int D);
/* Per-sample adaLN modulation of G groups of T rows: out = x * (1 + scale[g]) + shift[g];
 * shift/scale rows of group g are at shift + g*ld, scale + g*ld. */
void op_modulate(float *out, const float *x, const float *shift, const float *scale, int ld, int G, int T, int D);
void op_modulate_backward(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                          const float *scale, int ld, int G, int T, int D);
/* Both in one pass over x [G*T, D] (the same values as op_layernorm then
 * op_modulate): u = modulate(xhat) unless u is NULL, xhat itself only where
 * xhat is not NULL (backward can rebuild it), mean and rstd always. */
void op_ln_modulate(float *u, float *xhat, float *mean, float *rstd, const float *x, const float *shift,
                    const float *scale, int ld, int G, int T, int D);
/* z += gate[g] * y per group of T rows; backward: dy += gate * dz, dgate[g] += sum(dz * y). */
void op_gate_residual(float *z, const float *y, const float *gate, int ld, int G, int T, int D);
void op_gate_residual_backward(float *dy, float *dgate, const float *dz, const float *y, const float *gate,
                               int ld, int G, int T, int D);

/* ---- pointwise ---- */
/* Activations on n values; backward takes the pre-activation x. */
void op_silu(float *out, const float *x, size_t n);
void op_silu_backward(float *dx, const float *dout, const float *x, size_t n);
void op_gelu_tanh(float *out, const float *x, size_t n);
void op_gelu_tanh_backward(float *dx, const float *dout, const float *x, size_t n);
void op_zero(float *p, size_t n);

/* ---- optimizer ---- */
/* AdamW over many tensors in one launch: segment k updates n values at params
 * + p, grads + g, m + mo, v + mo: m = b1 m + (1-b1) g', v = b2 v + (1-b2) g'^2,
 * p = p decay - step m / (sqrt(v) rbc2 + eps), g' = g grad_scale, with the
 * segment's own step and rbc2 (its bias corrections) and decay. segs is a
 * host array. */
typedef struct {
    size_t p, g, mo, n;
    float step, rbc2, decay;
} AdamSeg;
void op_adamw_multi(float *params, const float *grads, float *m, float *v, const AdamSeg *segs, int nseg, float b1,
                    float b2, float eps, float grad_scale);
/* SGD with momentum and L2 weight decay: g' = g grad_scale + wd p, m = mu m + g', p -= lr m. */
void op_sgd(float *p, const float *g, float *m, size_t n, float mu, float wd, float lr, float grad_scale);
/* ema = decay ema + (1 - decay) p. */
void op_ema(float *ema, const float *p, size_t n, float decay);
/* sum x_i^2 in double, in fixed chunks of 65536 summed in order (the same for any thread count). */
double op_sum_squares(const float *x, size_t n);

/* ---- attention ----
 * A batch of Z1 x Z2 independent problems of nq query rows each (z1: the
 * sample, z2: its frame or spatial position). Problem (z1,z2) row r of the
 * fused qkv buffer starts at qkv + z1*s1 + z2*s2 + r*ld, with q, k, v in
 * columns [0,D), [D,2D), [2D,3D), D = NH*dh, head h owning dh columns; its
 * queries attend to its own nq rows and, when nb > 0, to the nb rows of the
 * sample's second key set (the reference bank, another fused qkv buffer:
 * row r at bank + z1*bs1 + r*bld), unless drop[z1] is set (drop may be NULL).
 * Output rows go to out + z1*os1 + z2*os2 + r*old. Scale 1/sqrt(dh), no mask.
 * `state` keeps what backward needs (the CPU: softmax probabilities; CUDA:
 * per-row log-sum-exp only, never the score matrix); its size and the
 * backward scratch's come from the backend. dqkv/dbank share qkv/bank's
 * layout; dbank may be NULL when nb == 0. */
typedef struct {
    int Z1, Z2, nq, NH, dh;
    size_t s1, s2;
    int ld;
    size_t bs1;
    int bld, nb;
    size_t os1, os2;
    int old;
} AttnShape;
size_t op_attention_state_floats(const AttnShape *a);
size_t op_attention_scratch_floats(const AttnShape *a);
void op_attention(const AttnShape *a, float *out, float *state, const float *qkv, const float *bank,
                  const uint8_t *drop);
void op_attention_backward(const AttnShape *a, float *dqkv, float *dbank, const float *dout, const float *out,
                           const float *state, const float *qkv, const float *bank, const uint8_t *drop,
                           float *scratch);

/* ---- convolution ----
 * 2-D convolution of N images: in [N,Cin,H,W] -> out [N,Cout,Ho,Wo], square
 * kernel k, stride, zero padding pad. col is scratch of op_conv2d_scratch_floats. */
size_t op_conv2d_scratch_floats(int Cin, int Ho, int Wo, int k);
void op_conv2d(float *out, const float *in, const float *W, const float *bias, int N, int Cin, int H, int Wd,
               int Cout, int k, int stride, int pad, float *col);
void op_conv2d_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W,
                        int N, int Cin, int H, int Wd, int Cout, int k, int stride, int pad, float *col);
static inline int conv_out_size(int n, int k, int stride, int pad) { return (n + 2 * pad - k) / stride + 1; }

/* ---- patches and embeddings ----
 * Patchify N images [Cn,H,W] into N x [(H/p)(W/p), Cn*p*p] tokens (channel order c, kh, kw: a
 * Conv2d weight [D,Cn,p,p] viewed as a Linear [D, Cn*p*p]); unpatchify_final maps N x [S, p*p*C]
 * tokens (order prow, pcol, c) back to [C,H,W] images as DiT does. Backward versions add. */
void op_patchify(float *tok, const float *img, int N, int Cn, int H, int W, int p);
void op_patchify_backward(float *dimg, const float *dtok, int N, int Cn, int H, int W, int p);
void op_unpatchify_final(float *img, const float *tok, int N, int C, int H, int W, int p);
void op_unpatchify_final_backward(float *dtok, const float *dimg, int N, int C, int H, int W, int p);
/* out[2B,256]: rows 0..B-1 embed t[i], rows B..2B-1 embed t = 0 (the reference pass's c(0)). */
void op_timestep_embed(float *out, const int *t, int B);
/* Row r of z [rows, D] += pos[r % S] + (r < nframe_rows ? frame[(r / S) % F] : 0); pos NULL adds the frame part alone. */
void op_add_pos(float *z, const float *pos, const float *frame, size_t rows, size_t nframe_rows, int S, int F, int D);
/* Per sample i of B, blocks of n values: z_i += x_i unless drop[i]. */
void op_add_unless(float *z, const float *x, const uint8_t *drop, int B, size_t n);
/* dst_i = drop[i] ? 0 : src_i. */
void op_copy_unless(float *dst, const float *src, const uint8_t *drop, int B, size_t n);
