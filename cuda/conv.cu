/* The pose guider's convolutions through cuDNN, all N images in one call,
 * fp32 with deterministic algorithms (implicit precomputed GEMM forward,
 * ALGO_1 for both gradients); gradients accumulate through beta = 1. */
#include "common.cuh"
#include "cuda/ops_cuda.h"
#include <cudnn.h>

#define DNN(call)                                                                                      \
    do {                                                                                               \
        cudnnStatus_t s_ = (call);                                                                     \
        if (s_ != CUDNN_STATUS_SUCCESS) ep_die("cuDNN: %s failed at %s:%d: %s", #call, __FILE__,       \
                                               __LINE__, cudnnGetErrorString(s_));                     \
    } while (0)

typedef struct {
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} Descs;

static cudnnHandle_t dnn;

static Descs make(int N, int Cin, int H, int W, int Cout, int k, int stride, int pad) {
    if (!dnn) DNN(cudnnCreate(&dnn));
    Descs d;
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
    DNN(cudnnCreateTensorDescriptor(&d.x));
    DNN(cudnnCreateTensorDescriptor(&d.y));
    DNN(cudnnCreateTensorDescriptor(&d.b));
    DNN(cudnnCreateFilterDescriptor(&d.w));
    DNN(cudnnCreateConvolutionDescriptor(&d.conv));
    DNN(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, Cin, H, W));
    DNN(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, Cout, Ho, Wo));
    DNN(cudnnSetTensor4dDescriptor(d.b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, Cout, 1, 1));
    DNN(cudnnSetFilter4dDescriptor(d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, Cout, Cin, k, k));
    DNN(cudnnSetConvolution2dDescriptor(d.conv, pad, pad, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT));
    DNN(cudnnSetConvolutionMathType(d.conv, CUDNN_FMA_MATH)); /* fp32 FMA: no TF32 rounding */
    return d;
}

static void destroy(Descs *d) {
    cudnnDestroyTensorDescriptor(d->x);
    cudnnDestroyTensorDescriptor(d->y);
    cudnnDestroyTensorDescriptor(d->b);
    cudnnDestroyFilterDescriptor(d->w);
    cudnnDestroyConvolutionDescriptor(d->conv);
}

/* The im2col scratch the model provides is not needed: cuDNN's own workspace comes from the backend. */
extern "C" void cuda_conv2d(float *out, const float *in, const float *W, const float *bias, int N, int Cin, int H,
                            int Wd, int Cout, int k, int stride, int pad, float *col) {
    (void)col;
    Descs d = make(N, Cin, H, Wd, Cout, k, stride, pad);
    float one = 1.0f, zero = 0.0f;
    /* implicit GEMM (algorithm 0) where this cuDNN lacks the precomputed one for a shape; both are deterministic */
    cudnnConvolutionFwdAlgo_t algos[2] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                          CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM};
    cudnnStatus_t st = CUDNN_STATUS_NOT_SUPPORTED;
    for (int i = 0; i < 2 && st != CUDNN_STATUS_SUCCESS; i++) {
        size_t bytes = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(dnn, d.x, d.w, d.conv, d.y, algos[i], &bytes) !=
            CUDNN_STATUS_SUCCESS)
            continue;
        float *ws = cuda_workspace(bytes / sizeof(float) + 1, 1);
        st = cudnnConvolutionForward(dnn, &one, d.x, in, d.w, W, d.conv, algos[i], ws, bytes, &zero, d.y, out);
    }
    if (st != CUDNN_STATUS_SUCCESS) ep_die("cuDNN: convolution forward: %s", cudnnGetErrorString(st));
    if (bias) DNN(cudnnAddTensor(dnn, &one, d.b, bias, &one, d.y, out));
    destroy(&d);
}

extern "C" void cuda_conv2d_backward(float *din, float *dW, float *db, const float *dout, const float *in,
                                     const float *W, int N, int Cin, int H, int Wd, int Cout, int k, int stride,
                                     int pad, float *col) {
    (void)col;
    Descs d = make(N, Cin, H, Wd, Cout, k, stride, pad);
    float one = 1.0f;
    if (db) DNN(cudnnConvolutionBackwardBias(dnn, &one, d.y, dout, &one, d.b, db));
    if (dW) {
        cudnnConvolutionBwdFilterAlgo_t algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
        size_t bytes = 0;
        DNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn, d.x, d.y, d.conv, d.w, algo, &bytes));
        float *ws = cuda_workspace(bytes / sizeof(float) + 1, 1);
        DNN(cudnnConvolutionBackwardFilter(dnn, &one, d.x, in, d.y, dout, d.conv, algo, ws, bytes, &one, d.w, dW));
    }
    if (din) {
        cudnnConvolutionBwdDataAlgo_t algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
        size_t bytes = 0;
        DNN(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn, d.w, d.y, d.conv, d.x, algo, &bytes));
        float *ws = cuda_workspace(bytes / sizeof(float) + 1, 1);
        DNN(cudnnConvolutionBackwardData(dnn, &one, d.w, W, d.y, dout, d.conv, algo, ws, bytes, &one, d.x, din));
    }
    destroy(&d);
}
