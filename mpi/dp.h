/* Data-parallel communication on the CPU (MPI). Every collective here runs
 * in a fixed order, so results never depend on timing or on which message
 * arrives first: a reduction sums rank 0's values, then rank 1's, and so on.
 *
 * The parameter space [0, total) of the flat parameter buffer is split into R
 * contiguous ranges, one per rank (dp_range): a rank owns the optimizer state
 * of its range (ZeRO-1) and writes its range of every tensor to checkpoints. */
#pragma once
#include <mpi.h>
#include <stddef.h>

typedef struct {
    MPI_Comm comm;
    int rank, size;
} Dp;

void dp_init(Dp *d, MPI_Comm comm);
/* [lo, hi) of n items owned by `rank` of `size` (equal split, the first n % size get one more). */
void dp_range(size_t n, int rank, int size, size_t *lo, size_t *hi);

/* Reduce-scatter of the mean: rank r's buf[cut[r] .. cut[r+1]) becomes the mean
 * over ranks of that slice (summed in rank order); the rest of buf is left
 * stale. cut has size+1 entries, cut[0] = 0, cut[size] = n. scratch holds
 * size * (largest slice) floats. */
void dp_reduce_scatter_mean(const Dp *d, float *buf, const size_t *cut, float *scratch);
/* All-gather: every rank's slice buf[cut[r] .. cut[r+1]) reaches every rank. */
void dp_allgather(const Dp *d, float *buf, const size_t *cut);
/* Sum of one double per rank, added in rank order (the same bits everywhere). */
double dp_sum(const Dp *d, double v);
/* Sum of one u64 per rank (mod 2^64; order does not matter). */
unsigned long long dp_sum_u64(const Dp *d, unsigned long long v);
void dp_bcast(const Dp *d, void *buf, size_t bytes, int root);
