#include "mpi/dp_nccl.h"
#include "core/die.h"
#include <stdio.h>
#include <stdlib.h>

#ifdef ENTPROG_NCCL
#include "ops/ops.h"
#include <cuda_runtime.h>
#include <nccl.h>
#include <string.h>

struct DpNccl {
    ncclComm_t comm;
    int rank, size;
    float *pad;     /* [size * shard] the padded layout, when buf does not have it (backend memory) */
    size_t pad_cap; /* floats in pad */
    int force_pad;  /* ENTPROG_NCCL_PAD=1: through pad even when buf has the layout (tests the copies) */
};

#define NCCL(call)                                                                                     \
    do {                                                                                               \
        ncclResult_t r_ = (call);                                                                      \
        if (r_ != ncclSuccess) ep_die("NCCL: %s failed: %s", #call, ncclGetErrorString(r_));          \
    } while (0)

#define CUDA(call)                                                                                     \
    do {                                                                                               \
        cudaError_t e_ = (call);                                                                       \
        if (e_ != cudaSuccess) ep_die("CUDA: %s failed: %s", #call, cudaGetErrorString(e_));          \
    } while (0)

DpNccl *dp_nccl_create(const Dp *d) {
    /* NCCL picks its algorithm per call; NVLS (Hopper's in-switch reduction) does
     * not repeat its bits from call to call. Ring reduces in an order fixed by
     * the topology: the default here, unless the user chose (docs/scaling.md). */
    int world_rank = 0; /* says things once per run, not once per rank group */
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    if (!getenv("NCCL_ALGO")) {
        setenv("NCCL_ALGO", "Ring", 0);
        if (world_rank == 0) printf("NCCL: NCCL_ALGO=Ring (a reduction order that repeats; set NCCL_ALGO to choose)\n");
    }
    ncclUniqueId id;
    if (d->rank == 0) NCCL(ncclGetUniqueId(&id));
    dp_bcast(d, &id, sizeof id, 0);
    DpNccl *n = calloc(1, sizeof *n);
    if (!n) ep_die("out of memory for the NCCL communicator");
    n->rank = d->rank, n->size = d->size;
    const char *pad = getenv("ENTPROG_NCCL_PAD");
    n->force_pad = pad && strcmp(pad, "1") == 0;
    NCCL(ncclCommInitRank(&n->comm, d->size, id, d->rank));
    if (world_rank == 0) {
        int v = 0;
        ncclGetVersion(&v);
        printf("NCCL %d.%d.%d: %d rank%s\n", v / 10000, v / 100 % 100, v % 100, d->size, d->size > 1 ? "s" : "");
    }
    return n;
}

void dp_nccl_destroy(DpNccl *n) {
    if (!n) return;
    ncclCommDestroy(n->comm);
    ops_free(n->pad);
    free(n);
}

/* The padded buffer for this cut, or NULL when buf already has the layout. */
static float *padded(DpNccl *n, const size_t *cut, size_t *shard) {
    if (dp_padded_shard(cut, n->size, shard) && !n->force_pad) return NULL;
    size_t need = (size_t)n->size * *shard;
    if (need > n->pad_cap) { /* grows with the trainable set (the padding's values only ever reduce into padding) */
        ops_free(n->pad);
        n->pad = ops_alloc((need ? need : 1) * sizeof(float), "NCCL padded shards");
        n->pad_cap = need;
    }
    return n->pad;
}

/* The backend's ops run on the legacy default stream: so do these, in order with them. */
static void copy(float *dst, const float *src, size_t floats) {
    if (floats) CUDA(cudaMemcpyAsync(dst, src, floats * sizeof(float), cudaMemcpyDeviceToDevice, 0));
}

/* One ncclReduceScatter over equal shards (ncclAvg: the mean), in place in the
 * padded layout; rank r's slice is the r-th shard. The padding reduces too,
 * into the padding. */
void dp_nccl_reduce_scatter_mean(DpNccl *n, float *buf, const size_t *cut) {
    size_t S;
    float *pad = padded(n, cut, &S), *x = pad ? pad : buf;
    if (pad)
        for (int r = 0; r < n->size; r++) copy(pad + (size_t)r * S, buf + cut[r], cut[r + 1] - cut[r]);
    NCCL(ncclReduceScatter(x, x + (size_t)n->rank * S, S, ncclFloat, ncclAvg, n->comm, 0));
    if (pad) copy(buf + cut[n->rank], pad + (size_t)n->rank * S, cut[n->rank + 1] - cut[n->rank]);
}

/* One ncclAllGather over the same equal shards, in place. */
void dp_nccl_allgather(DpNccl *n, float *buf, const size_t *cut) {
    size_t S;
    float *pad = padded(n, cut, &S), *x = pad ? pad : buf;
    if (pad) copy(pad + (size_t)n->rank * S, buf + cut[n->rank], cut[n->rank + 1] - cut[n->rank]);
    NCCL(ncclAllGather(x + (size_t)n->rank * S, x, S, ncclFloat, n->comm, 0));
    if (pad)
        for (int r = 0; r < n->size; r++)
            if (r != n->rank) copy(buf + cut[r], pad + (size_t)r * S, cut[r + 1] - cut[r]);
}

#else

DpNccl *dp_nccl_create(const Dp *d) {
    (void)d;
    return NULL;
}
void dp_nccl_destroy(DpNccl *n) { (void)n; }
void dp_nccl_reduce_scatter_mean(DpNccl *n, float *buf, const size_t *cut) {
    (void)n, (void)buf, (void)cut;
    ep_die("internal: NCCL collective in a build without NCCL");
}
void dp_nccl_allgather(DpNccl *n, float *buf, const size_t *cut) {
    (void)n, (void)buf, (void)cut;
    ep_die("internal: NCCL collective in a build without NCCL");
}

#endif
