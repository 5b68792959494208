/* Every op of ops.h once, as OP(name, (parameters), (arguments), model FLOPs):
 * ops_cpu.h and cuda/ops_cuda.h declare cpu_<name> and cuda_<name> from it,
 * and ops.c builds the op_<name> dispatchers (which also count the FLOPs of
 * the products, for MFU), so the three can never disagree. */
OP(linear, (float *out, const float *in, const float *W, const float *bias, int N, int Ni, int O),
   (out, in, W, bias, N, Ni, O), 2.0 * N * Ni * O)
OP(linear_gelu, (float *h, float *g, const float *in, const float *W, const float *bias, int N, int Ni, int O),
   (h, g, in, W, bias, N, Ni, O), 2.0 * N * Ni * O)
OP(linear_backward, (float *din, float *dW, float *db, const float *dout, const float *in, const float *W, int N,
                     int Ni, int O),
   (din, dW, db, dout, in, W, N, Ni, O), 2.0 * N * Ni * O * ((din != NULL) + (dW != NULL)))
OP(linear_backward_dgelu, (float *dh, float *dW, float *db, const float *dout, const float *in, const float *W,
                           const float *h, float *scratch, int N, int Ni, int O),
   (dh, dW, db, dout, in, W, h, scratch, N, Ni, O), 2.0 * N * Ni * O * (1 + (dW != NULL)))
OP(layernorm, (float *xhat, float *mean, float *rstd, const float *x, int N, int D), (xhat, mean, rstd, x, N, D), 0)
OP(layernorm_backward, (float *dx, const float *dxhat, const float *xhat, const float *rstd, int N, int D),
   (dx, dxhat, xhat, rstd, N, D), 0)
OP(ln_modulate, (float *u, float *xhat, float *mean, float *rstd, const float *x, const float *shift,
                  const float *scale, int ld, int G, int T, int D),
   (u, xhat, mean, rstd, x, shift, scale, ld, G, T, D), 0)
OP(modulate, (float *out, const float *x, const float *shift, const float *scale, int ld, int G, int T, int D),
   (out, x, shift, scale, ld, G, T, D), 0)
OP(modulate_backward, (float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                       const float *scale, int ld, int G, int T, int D),
   (dx, dshift, dscale, dout, x, scale, ld, G, T, D), 0)
OP(gate_residual, (float *z, const float *y, const float *gate, int ld, int G, int T, int D), (z, y, gate, ld, G, T, D), 0)
OP(gate_residual_backward, (float *dy, float *dgate, const float *dz, const float *y, const float *gate, int ld,
                            int G, int T, int D),
   (dy, dgate, dz, y, gate, ld, G, T, D), 0)
OP(silu, (float *out, const float *x, size_t n), (out, x, n), 0)
OP(silu_backward, (float *dx, const float *dout, const float *x, size_t n), (dx, dout, x, n), 0)
OP(gelu_tanh, (float *out, const float *x, size_t n), (out, x, n), 0)
OP(gelu_tanh_backward, (float *dx, const float *dout, const float *x, size_t n), (dx, dout, x, n), 0)
OP(zero, (float *p, size_t n), (p, n), 0)
OP(attention, (const AttnShape *a, float *out, float *state, const float *qkv, const float *bank,
               const uint8_t *drop),
   (a, out, state, qkv, bank, drop), attn_flops(a))
OP(attention_backward, (const AttnShape *a, float *dqkv, float *dbank, const float *dout, const float *out,
                        const float *state, const float *qkv, const float *bank, const uint8_t *drop, float *scratch),
   (a, dqkv, dbank, dout, out, state, qkv, bank, drop, scratch), 2.0 * attn_flops(a))
OP(conv2d, (float *out, const float *in, const float *W, const float *bias, int N, int Cin, int H, int Wd, int Cout,
            int k, int stride, int pad, float *col),
   (out, in, W, bias, N, Cin, H, Wd, Cout, k, stride, pad, col), conv_flops(N, Cin, H, Wd, Cout, k, stride, pad))
OP(conv2d_backward, (float *din, float *dW, float *db, const float *dout, const float *in, const float *W, int N,
                     int Cin, int H, int Wd, int Cout, int k, int stride, int pad, float *col),
   (din, dW, db, dout, in, W, N, Cin, H, Wd, Cout, k, stride, pad, col), conv_flops(N, Cin, H, Wd, Cout, k, stride, pad) * ((din != NULL) + (dW != NULL)))
OP(patchify, (float *tok, const float *img, int N, int Cn, int H, int W, int p), (tok, img, N, Cn, H, W, p), 0)
OP(patchify_backward, (float *dimg, const float *dtok, int N, int Cn, int H, int W, int p),
   (dimg, dtok, N, Cn, H, W, p), 0)
OP(unpatchify_final, (float *img, const float *tok, int N, int C, int H, int W, int p), (img, tok, N, C, H, W, p), 0)
OP(unpatchify_final_backward, (float *dtok, const float *dimg, int N, int C, int H, int W, int p),
   (dtok, dimg, N, C, H, W, p), 0)
OP(timestep_embed, (float *out, const int *t, int B), (out, t, B), 0)
OP(add_pos, (float *z, const float *pos, const float *frame, size_t rows, size_t nframe_rows, int S, int F, int D),
   (z, pos, frame, rows, nframe_rows, S, F, D), 0)
OP(add_unless, (float *z, const float *x, const uint8_t *drop, int B, size_t n), (z, x, drop, B, n), 0)
OP(copy_unless, (float *dst, const float *src, const uint8_t *drop, int B, size_t n), (dst, src, drop, B, n), 0)
OP(sgd, (float *p, const float *g, float *m, size_t n, float mu, float wd, float lr, float grad_scale),
   (p, g, m, n, mu, wd, lr, grad_scale), 0)
OP(ema, (float *ema, const float *p, size_t n, float decay), (ema, p, n, decay), 0)
OP(adamw_multi, (float *params, const float *grads, float *m, float *v, const AdamSeg *segs, int nseg, float b1,
                  float b2, float eps, float grad_scale),
   (params, grads, m, v, segs, nseg, b1, b2, eps, grad_scale), 0)
