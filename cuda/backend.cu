/* The CUDA backend's device, memory and workspace: one GPU per process, the
 * legacy default stream for every op (so a host copy waits for all of them),
 * and a counting allocator that knows the device peak. */
#include "common.cuh"
#include "cuda/ops_cuda.h"
#include <stdio.h>
#include <stdlib.h>

static size_t in_use, peak;
static cublasLtHandle_t lt;
static void *lt_ws;
static size_t lt_ws_bytes = 64u << 20;
static float *ws[5];
static size_t ws_cap[5];

/* The GPU of this process: the only visible one, else the node-local MPI rank's. */
static int pick_device(int count) {
    const char *r = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (!r) r = getenv("SLURM_LOCALID");
    int local = r ? atoi(r) : 0;
    return count == 1 ? 0 : local % count;
}

/* Exists to ask whether this build has machine code (or PTX) the GPU can run. */
__global__ static void probe_kernel(void) {}

extern "C" int cuda_init(char *desc, size_t n) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        snprintf(desc, n, "no usable GPU (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return -1;
    }
    int dev = pick_device(count);
    CU(cudaSetDevice(dev));
    cudaDeviceProp p;
    CU(cudaGetDeviceProperties(&p, dev));
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, probe_kernel) != cudaSuccess) {
        cudaGetLastError();
        snprintf(desc, n,
                 "%s is sm_%d%d, and this build has no kernels for it: rebuild with "
                 "-DCMAKE_CUDA_ARCHITECTURES=%d%d (the default is 90 plus the build machine's own GPU)",
                 p.name, p.major, p.minor, p.major, p.minor);
        return -1;
    }
    if (!lt) {
        CUBLAS(cublasLtCreate(&lt));
        CU(cudaMalloc(&lt_ws, lt_ws_bytes));
    }
    snprintf(desc, n, "GPU %d of %d: %s, %.1f GiB, sm_%d%d, bf16 tensor-core GEMMs (fp32 storage and accumulation)",
             dev, count, p.name, p.totalGlobalMem / 1073741824.0, p.major, p.minor);
    return 0;
}

cublasLtHandle_t cuda_lt(void) { return lt; }
void *cuda_lt_workspace(size_t *bytes) {
    *bytes = lt_ws_bytes;
    return lt_ws;
}

/* Each block keeps its size in a 256-byte header, so free knows what to uncount. */
#define HEADER 256

extern "C" void *cuda_alloc(size_t bytes, const char *what) {
    unsigned char *p = NULL;
    cudaError_t e = cudaMalloc((void **)&p, bytes + HEADER);
    if (e != cudaSuccess)
        ep_die("out of GPU memory allocating %zu bytes for %s (%zu in use): %s; train.recompute = 1 (activation "
               "checkpointing), a smaller train.batch or frozen blocks (Ent-Prog) need less, and "
               "bench_step <deck> --backend cuda --plan shows what a setting needs",
               bytes, what, in_use, cudaGetErrorString(e));
    CU(cudaMemcpy(p, &bytes, sizeof bytes, cudaMemcpyHostToDevice));
    CU(cudaMemset(p + HEADER, 0, bytes));
    in_use += bytes;
    if (in_use > peak) peak = in_use;
    return p + HEADER;
}

extern "C" void cuda_free(void *q) {
    if (!q) return;
    unsigned char *p = (unsigned char *)q - HEADER;
    size_t bytes;
    CU(cudaMemcpy(&bytes, p, sizeof bytes, cudaMemcpyDeviceToHost));
    in_use -= bytes;
    CU(cudaFree(p));
}

extern "C" void cuda_upload(void *dst, const void *src, size_t bytes) {
    if (bytes) CU(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
extern "C" void cuda_download(void *dst, const void *src, size_t bytes) {
    if (bytes) CU(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
extern "C" void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) CU(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}
/* A failed pin only costs speed: the copy then goes through a bounce buffer. */
extern "C" void cuda_pin(void *host, size_t bytes) {
    if (cudaHostRegister(host, bytes, cudaHostRegisterDefault) != cudaSuccess) cudaGetLastError();
}
extern "C" void cuda_unpin(void *host) {
    if (cudaHostUnregister(host) != cudaSuccess) cudaGetLastError();
}

extern "C" size_t cuda_mem_in_use(void) { return in_use; }

extern "C" size_t cuda_mem_free(void) {
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) return 0;
    return free_b;
}
/* The peak also counts the backend's own workspaces. */
extern "C" size_t cuda_mem_peak(void) {
    size_t w = lt_ws ? lt_ws_bytes : 0;
    for (int i = 0; i < 5; i++) w += ws_cap[i] * sizeof(float);
    return peak + w;
}
extern "C" void cuda_mem_reset_peak(void) { peak = in_use; }
extern "C" void cuda_sync(void) { CU(cudaDeviceSynchronize()); }

float *cuda_workspace(size_t floats, int slot) {
    if (floats > ws_cap[slot]) {
        CU(cudaDeviceSynchronize()); /* a queued op may still use the old one */
        if (ws[slot]) CU(cudaFree(ws[slot]));
        ws_cap[slot] = floats + floats / 4;
        CU(cudaMalloc((void **)&ws[slot], ws_cap[slot] * sizeof(float)));
    }
    return ws[slot];
}
