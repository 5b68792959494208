/* The optimizer's element-wise updates and the gradient norm on the device.
 * The formulas are the CPU backend's; the sum of squares uses the same
 * 65536-value chunks, each reduced by one block in a fixed tree order and
 * summed in order on the host, so it repeats exactly run to run. */
#include "common.cuh"
#include "cuda/ops_cuda.h"
#include <stdlib.h>

#define TPB 256
#define FOR_EACH(n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static unsigned grid_for(size_t n) {
    size_t b = (n + TPB - 1) / TPB;
    return (unsigned)(b > 65536 ? 65536 : (b ? b : 1));
}

__global__ static void sgd_k(float *p, const float *g, float *m, size_t n, float mu, float wd, float lr,
                             float grad_scale) {
    FOR_EACH(n) {
        float gi = g[i] * grad_scale + wd * p[i];
        float mi = mu * m[i] + gi;
        m[i] = mi;
        p[i] -= lr * mi;
    }
}

__global__ static void ema_k(float *ema, const float *p, size_t n, float decay) {
    FOR_EACH(n) ema[i] = decay * ema[i] + (1.0f - decay) * p[i];
}

extern "C" void cuda_sgd(float *p, const float *g, float *m, size_t n, float mu, float wd, float lr, float grad_scale) {
    if (!n) return;
    sgd_k<<<grid_for(n), TPB>>>(p, g, m, n, mu, wd, lr, grad_scale);
    KCHECK("sgd");
}

extern "C" void cuda_ema(float *ema, const float *p, size_t n, float decay) {
    if (!n) return;
    ema_k<<<grid_for(n), TPB>>>(ema, p, n, decay);
    KCHECK("ema");
}

/* blockIdx.y: the segment; blocks stride over its values. */
__global__ static void adamw_multi_k(float *params, const float *grads, float *m, float *v, const AdamSeg *segs,
                                     float b1, float b2, float eps, float grad_scale) {
    AdamSeg s = segs[blockIdx.y];
    float *p = params + s.p, *mm = m + s.mo, *vv = v + s.mo;
    const float *g = grads + s.g;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < s.n; i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i] * grad_scale;
        float mi = b1 * mm[i] + (1.0f - b1) * gi, vi = b2 * vv[i] + (1.0f - b2) * gi * gi;
        mm[i] = mi;
        vv[i] = vi;
        p[i] = p[i] * s.decay - s.step * mi / (sqrtf(vi) * s.rbc2 + eps);
    }
}

extern "C" void cuda_adamw_multi(float *params, const float *grads, float *m, float *v, const AdamSeg *segs, int nseg,
                                 float b1, float b2, float eps, float grad_scale) {
    if (nseg <= 0) return;
    size_t bytes = (size_t)nseg * sizeof(AdamSeg), most = 0;
    for (int k = 0; k < nseg; k++) most = segs[k].n > most ? segs[k].n : most;
    if (!most) return;
    AdamSeg *d = (AdamSeg *)cuda_workspace(bytes / sizeof(float) + 1, 4);
    CU(cudaMemcpy(d, segs, bytes, cudaMemcpyHostToDevice));
    dim3 grid((unsigned)((most + TPB - 1) / TPB > 1024 ? 1024 : (most + TPB - 1) / TPB), (unsigned)nseg);
    adamw_multi_k<<<grid, TPB>>>(params, grads, m, v, d, b1, b2, eps, grad_scale);
    KCHECK("adamw_multi");
}

#define CHUNK 65536

/* One block per chunk: strided per-thread sums, then a shared-memory tree. */
__global__ static void sumsq_k(double *part, const float *x, size_t n) {
    __shared__ double s[TPB];
    size_t lo = (size_t)blockIdx.x * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
    double acc = 0;
    for (size_t i = lo + threadIdx.x; i < hi; i += TPB) acc += (double)x[i] * x[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int w = TPB / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = s[0];
}

extern "C" double cuda_sum_squares(const float *x, size_t n) {
    size_t nc = (n + CHUNK - 1) / CHUNK;
    if (!nc) return 0.0;
    double *part = (double *)cuda_workspace(2 * nc, 3), *host = (double *)malloc(nc * sizeof(double));
    if (!host) ep_die("out of memory for %zu partial sums", nc);
    sumsq_k<<<(unsigned)nc, TPB>>>(part, x, n);
    KCHECK("sum_squares");
    CU(cudaMemcpy(host, part, nc * sizeof(double), cudaMemcpyDeviceToHost));
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += host[c];
    free(host);
    return s;
}
