/* The collectives of dp.h on GPU buffers through NCCL, for the CUDA backend
 * with several ranks. The communicator comes from a unique id that rank 0
 * broadcasts over MPI; each rank uses the GPU the CUDA backend chose. NCCL
 * fixes its reduction order for a given set of ranks and GPUs, so results
 * repeat run to run, but they are not the MPI path's rank-order sums.
 * Opt-in (ENTPROG_COMM=nccl) until it has run on a machine with several
 * GPUs; without it the gradients cross through the host for MPI. */
#pragma once
#include "mpi/dp.h"

typedef struct DpNccl DpNccl;

/* NULL when this build has no NCCL. */
DpNccl *dp_nccl_create(const Dp *d);
void dp_nccl_destroy(DpNccl *n);
/* As dp_reduce_scatter_mean, on device memory (mean by ncclAvg, one ncclReduce per slice). */
void dp_nccl_reduce_scatter_mean(DpNccl *n, float *buf, const size_t *cut);
/* As dp_allgather, on device memory (one ncclBroadcast per slice). */
void dp_nccl_allgather(DpNccl *n, float *buf, const size_t *cut);
