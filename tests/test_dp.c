/* mpi/dp.c's exchanges on cuts the model rarely makes (empty slices, one rank
 * holding almost everything, uneven lengths), under mpirun with any number of
 * ranks: the overlapped reduce-scatter (dp_rs_*), told the final part in
 * random steps, gives the bits of dp_reduce_scatter_mean; dp_padded_shard's
 * shard and in-place verdict. Exit 0 when every check holds on every rank. */
#include "mpi/dp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void check(int cond, const char *what, int rank) {
    if (!cond) {
        failures++;
        printf("FAIL (rank %d) %s\n", rank, what);
    }
}

/* xorshift: the same stream on every rank for the cuts, one per rank for the data */
static unsigned long long next(unsigned long long *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static void test_padded_shard(int rank) {
    size_t eq[] = {0, 4, 8, 12}, uneq[] = {0, 5, 9, 12}, empty[] = {0, 0, 0, 0};
    size_t S;
    check(dp_padded_shard(eq, 3, &S) == 1 && S == 4, "equal slices at r * S: in place", rank);
    check(dp_padded_shard(uneq, 3, &S) == 0 && S == 5, "uneven slices: padded to the largest", rank);
    check(dp_padded_shard(empty, 3, &S) == 1 && S == 0, "no gradients: nothing to pad", rank);
}

/* One trial: a random cut of n values over the ranks, random data, both reduce-scatters. */
static void trial(const Dp *d, unsigned long long seed, int t) {
    int R = d->size;
    unsigned long long s = seed * 7919 + 1;
    size_t n = 1 + next(&s) % 5000, *cut = malloc((R + 1) * sizeof *cut);
    /* cut points: sorted random positions, some equal (empty slices); trial 0: one rank owns it all */
    cut[0] = 0, cut[R] = n;
    for (int r = 1; r < R; r++) cut[r] = t == 0 ? n : next(&s) % (n + 1);
    for (int i = 1; i < R; i++)
        for (int j = i; j > 1 && cut[j - 1] > cut[j]; j--) {
            size_t x = cut[j];
            cut[j] = cut[j - 1], cut[j - 1] = x;
        }
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *scratch = malloc(((size_t)R * n + 1) * sizeof *scratch);
    unsigned long long ds = seed + 1000003ULL * (unsigned long long)(d->rank + 1);
    for (size_t i = 0; i < n; i++) a[i] = b[i] = (float)((double)(next(&ds) % 2000001) / 1000.0 - 1000.0);
    dp_reduce_scatter_mean(d, a, cut, scratch);
    DpRsAsync x;
    dp_rs_begin(&x, d, b, cut, scratch);
    for (size_t from = n; from > 0;) { /* the final part grows from the end in random steps */
        from -= 1 + next(&ds) % (from < 700 ? from : 700);
        dp_rs_ready(&x, from);
    }
    dp_rs_finish(&x);
    size_t lo = cut[d->rank], hi = cut[d->rank + 1];
    char what[160];
    snprintf(what, sizeof what, "trial %d (n = %zu, slice [%zu, %zu)): overlapped = after, bit for bit", t, n, lo, hi);
    check(memcmp(a + lo, b + lo, (hi - lo) * sizeof *a) == 0, what, d->rank);
    free(a), free(b), free(scratch), free(cut);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    Dp d;
    dp_init(&d, MPI_COMM_WORLD);
    test_padded_shard(d.rank);
    for (int t = 0; t < 40; t++) trial(&d, 12345 + (unsigned long long)t, t);
    int all = failures;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (d.rank == 0) printf("%s: %d rank%s, %d failure%s\n", all ? "FAIL" : "ok", d.size, d.size > 1 ? "s" : "", all,
                            all == 1 ? "" : "s");
    MPI_Finalize();
    return all ? 1 : 0;
}
