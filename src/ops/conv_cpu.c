/* CPU convolution through im2col + sgemm (the pose guider's 3x3 convs). */
#include "ops/ops_cpu.h"
#include <cblas.h>
#include <omp.h>
#include <string.h>

static void im2col(float *col, const float *in, int Cin, int H, int W, int k, int stride, int pad, int Ho, int Wo) {
    for (int c = 0; c < Cin; c++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                float *row = col + ((size_t)(c * k + i) * k + j) * Ho * Wo;
                for (int oy = 0; oy < Ho; oy++) {
                    int y = oy * stride - pad + i;
                    for (int ox = 0; ox < Wo; ox++) {
                        int x = ox * stride - pad + j;
                        row[oy * Wo + ox] = (y >= 0 && y < H && x >= 0 && x < W) ? in[((size_t)c * H + y) * W + x] : 0.0f;
                    }
                }
            }
}

static void col2im_add(float *din, const float *col, int Cin, int H, int W, int k, int stride, int pad, int Ho, int Wo) {
    for (int c = 0; c < Cin; c++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                const float *row = col + ((size_t)(c * k + i) * k + j) * Ho * Wo;
                for (int oy = 0; oy < Ho; oy++) {
                    int y = oy * stride - pad + i;
                    if (y < 0 || y >= H) continue;
                    for (int ox = 0; ox < Wo; ox++) {
                        int x = ox * stride - pad + j;
                        if (x >= 0 && x < W) din[((size_t)c * H + y) * W + x] += row[oy * Wo + ox];
                    }
                }
            }
}

void cpu_conv2d_one(float *out, const float *in, const float *W, const float *bias, int Cin, int H, int Wd, int Cout,
               int k, int stride, int pad, float *col) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(Wd, k, stride, pad), P = Ho * Wo, K = Cin * k * k;
    im2col(col, in, Cin, H, Wd, k, stride, pad, Ho, Wo);
    for (int o = 0; o < Cout; o++)
        for (int i = 0; i < P; i++) out[(size_t)o * P + i] = bias ? bias[o] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, P, K, 1.0f, W, K, col, P, 1.0f, out, P);
}

void cpu_conv2d_backward_one(float *din, float *dW, float *db, const float *dout, const float *in, const float *W,
                        int Cin, int H, int Wd, int Cout, int k, int stride, int pad, float *col) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(Wd, k, stride, pad), P = Ho * Wo, K = Cin * k * k;
    if (db)
        for (int o = 0; o < Cout; o++)
            for (int i = 0; i < P; i++) db[o] += dout[(size_t)o * P + i];
    if (dW) {
        im2col(col, in, Cin, H, Wd, k, stride, pad, Ho, Wo);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, K, P, 1.0f, dout, P, col, P, 1.0f, dW, K);
    }
    if (din) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cout, 1.0f, W, K, dout, P, 0.0f, col, P);
        col2im_add(din, col, Cin, H, Wd, k, stride, pad, Ho, Wo);
    }
}

/* One image's im2col matrix, rounded up to 64 bytes. */
size_t cpu_conv2d_col_floats(int Cin, int Ho, int Wo, int k) {
    return ((size_t)Cin * k * k * Ho * Wo + 15) & ~(size_t)15;
}

/* N images: threads over images forward; backward in image order on one
 * thread, since every image adds into the same dW, db. */
void cpu_conv2d(float *out, const float *in, const float *W, const float *bias, int N, int Cin, int H, int Wd,
                int Cout, int k, int stride, int pad, float *col) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(Wd, k, stride, pad);
    size_t isz = (size_t)Cin * H * Wd, osz = (size_t)Cout * Ho * Wo, cs = cpu_conv2d_col_floats(Cin, Ho, Wo, k);
#pragma omp parallel for
    for (int n = 0; n < N; n++)
        cpu_conv2d_one(out + n * osz, in + n * isz, W, bias, Cin, H, Wd, Cout, k, stride, pad,
                       col + (size_t)omp_get_thread_num() * cs);
}

void cpu_conv2d_backward(float *din, float *dW, float *db, const float *dout, const float *in, const float *W, int N,
                         int Cin, int H, int Wd, int Cout, int k, int stride, int pad, float *col) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(Wd, k, stride, pad);
    size_t isz = (size_t)Cin * H * Wd, osz = (size_t)Cout * Ho * Wo;
    for (int n = 0; n < N; n++)
        cpu_conv2d_backward_one(din ? din + n * isz : NULL, dW, db, dout + n * osz, in + n * isz, W, Cin, H, Wd, Cout,
                                k, stride, pad, col);
}
