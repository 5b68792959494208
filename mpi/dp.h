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
/* The same reduce-scatter, overlapped with the computation that produces buf
 * (backward): the caller says, as it goes, from where on buf is final
 * (dp_rs_ready, `from` only decreasing), and each rank's slice leaves for its
 * owner as soon as it lies inside the final part (one message per sender and
 * owner, MPI_Isend/MPI_Irecv; a rank keeps its own slice). dp_rs_finish waits
 * and sums in rank order, so the result is bit for bit dp_reduce_scatter_mean's.
 * buf and cut must stay untouched until dp_rs_finish, except that the caller
 * may write parts not yet declared final. scratch as above. */
typedef struct {
    const Dp *d;
    float *buf, *scratch;
    const size_t *cut;
    int next;             /* slices next .. size-1 are on their way (they go last first) */
    MPI_Request *req;
    int n_req, cap;
} DpRsAsync;

void dp_rs_begin(DpRsAsync *x, const Dp *d, float *buf, const size_t *cut, float *scratch);
/* buf[from, cut[size]) is final: sends every slice inside it not yet sent, and
 * lets MPI progress the messages already under way. */
void dp_rs_ready(DpRsAsync *x, size_t from);
/* Sends what is left (all of buf is final now), waits, and writes the mean into this rank's slice. */
void dp_rs_finish(DpRsAsync *x);

/* Equal shards for a collective that needs them (NCCL's reduce-scatter and
 * all-gather): the largest slice of cut, S; the exchange then runs on R * S
 * values, slice r at r * S followed by padding. Returns 1 when buf itself
 * already has that layout (cut[r] = r * S for every r and cut[R] = R * S): no
 * copies, the padding is empty. The padding never leaves the exchange: the
 * ZeRO-1 ranges, the optimizer and checkpoints see only cut. */
int dp_padded_shard(const size_t *cut, int size, size_t *shard);
/* All-gather: every rank's slice buf[cut[r] .. cut[r+1]) reaches every rank. */
void dp_allgather(const Dp *d, float *buf, const size_t *cut);
/* Sum of one double per rank, added in rank order (the same bits everywhere). */
double dp_sum(const Dp *d, double v);
/* Sum of one u64 per rank (mod 2^64; order does not matter). */
unsigned long long dp_sum_u64(const Dp *d, unsigned long long v);
void dp_bcast(const Dp *d, void *buf, size_t bytes, int root);
