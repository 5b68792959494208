/* The collectives of dp.h on GPU buffers through NCCL, for the CUDA backend:
 * per step one ncclReduceScatter and one ncclAllGather on equal shards (each
 * rank's slice of the packed gradients padded to the largest, dp_padded_shard),
 * so the step's NCCL calls do not grow with the number of ranks. The
 * communicator comes from a unique id that the Dp's rank 0 broadcasts over its
 * MPI communicator: the world's, or a rank group's (a trials search, one per
 * group). Each rank uses the GPU the CUDA backend chose.
 *
 * Determinism: NCCL reduces in an order fixed by its algorithm, protocol,
 * channels and the ranks' places in the topology, not in rank order, so
 * results are not the MPI path's. With the same ranks on the same GPUs, the
 * same NCCL version and the same algorithm they repeat run to run; NCCL_ALGO
 * defaults to Ring here for that (docs/scaling.md, "Determinism").
 * Opt-in (ENTPROG_COMM=nccl) until it has run on a machine with several
 * GPUs; without it the gradients cross through the host for MPI. */
#pragma once
#include "mpi/dp.h"

typedef struct DpNccl DpNccl;

/* Collective over d's ranks; NULL when this build has no NCCL. */
DpNccl *dp_nccl_create(const Dp *d);
void dp_nccl_destroy(DpNccl *n);
/* As dp_reduce_scatter_mean, on device memory: one ncclReduceScatter (ncclAvg)
 * on the padded shards; only this rank's slice of buf is written. */
void dp_nccl_reduce_scatter_mean(DpNccl *n, float *buf, const size_t *cut);
/* As dp_allgather, on device memory: one ncclAllGather on the padded shards. */
void dp_nccl_allgather(DpNccl *n, float *buf, const size_t *cut);
