#include "mpi/dp_nccl.h"
#include "core/die.h"
#include <stdlib.h>

#ifdef ENTPROG_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

struct DpNccl {
    ncclComm_t comm;
    int size;
};

#define NCCL(call)                                                                                     \
    do {                                                                                               \
        ncclResult_t r_ = (call);                                                                      \
        if (r_ != ncclSuccess) ep_die("NCCL: %s failed: %s", #call, ncclGetErrorString(r_));          \
    } while (0)

DpNccl *dp_nccl_create(const Dp *d) {
    ncclUniqueId id;
    if (d->rank == 0) NCCL(ncclGetUniqueId(&id));
    dp_bcast(d, &id, sizeof id, 0);
    DpNccl *n = calloc(1, sizeof *n);
    if (!n) ep_die("out of memory for the NCCL communicator");
    n->size = d->size;
    NCCL(ncclCommInitRank(&n->comm, d->size, id, d->rank));
    return n;
}

void dp_nccl_destroy(DpNccl *n) {
    if (!n) return;
    ncclCommDestroy(n->comm);
    free(n);
}

/* The backend's ops run on the legacy default stream: so do these, in order with them. */
void dp_nccl_reduce_scatter_mean(DpNccl *n, float *buf, const size_t *cut) {
    NCCL(ncclGroupStart());
    for (int r = 0; r < n->size; r++)
        NCCL(ncclReduce(buf + cut[r], buf + cut[r], cut[r + 1] - cut[r], ncclFloat, ncclAvg, r, n->comm, 0));
    NCCL(ncclGroupEnd());
}

void dp_nccl_allgather(DpNccl *n, float *buf, const size_t *cut) {
    NCCL(ncclGroupStart());
    for (int r = 0; r < n->size; r++)
        NCCL(ncclBroadcast(buf + cut[r], buf + cut[r], cut[r + 1] - cut[r], ncclFloat, r, n->comm, 0));
    NCCL(ncclGroupEnd());
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
