#include "mpi/dp.h"
#include "core/die.h"
#include <stdlib.h>
#include <string.h>

/* MPI counts are ints: larger slices go in pieces of at most this many floats. */
#define PIECE ((size_t)1 << 28)

void dp_init(Dp *d, MPI_Comm comm) {
    d->comm = comm;
    MPI_Comm_rank(comm, &d->rank);
    MPI_Comm_size(comm, &d->size);
}

void dp_range(size_t n, int rank, int size, size_t *lo, size_t *hi) {
    size_t base = n / size, extra = n % size, r = (size_t)rank;
    *lo = r * base + (r < extra ? r : extra);
    *hi = *lo + base + (r < extra ? 1 : 0);
}

static size_t largest(const size_t *cut, int size) {
    size_t m = 0;
    for (int r = 0; r < size; r++) m = cut[r + 1] - cut[r] > m ? cut[r + 1] - cut[r] : m;
    return m;
}

/* dst[i] = (part_0[i] + part_1[i] + ... + part_{R-1}[i]) / R, added in rank
 * order, part_r at parts + r * stride: the one sum both exchanges share, so
 * the overlapped one gives the same bits. */
static void mean_in_rank_order(float *dst, const float *parts, size_t n, size_t stride, int R) {
    float inv = 1.0f / (float)R;
    for (size_t i = 0; i < n; i++) {
        float s = parts[i];
        for (int r = 1; r < R; r++) s += parts[(size_t)r * stride + i];
        dst[i] = s * inv;
    }
}

void dp_reduce_scatter_mean(const Dp *d, float *buf, const size_t *cut, float *scratch) {
    int R = d->size;
    if (R == 1) return;
    int *sc = malloc(4 * R * sizeof(int)), *sd = sc + R, *rc = sc + 2 * R, *rd = sc + 3 * R;
    size_t top = largest(cut, R), mine = cut[d->rank + 1] - cut[d->rank];
    /* piece p covers offsets [p*PIECE, (p+1)*PIECE) inside every rank's slice */
    for (size_t p0 = 0; p0 < top; p0 += PIECE) {
        for (int r = 0; r < R; r++) {
            size_t len = cut[r + 1] - cut[r], n = len > p0 ? (len - p0 < PIECE ? len - p0 : PIECE) : 0;
            sc[r] = (int)n;
            sd[r] = 0; /* set below: displacements into buf need not fit an int, so send per piece from a copy */
        }
        /* pack this piece of every destination slice contiguously */
        size_t total = 0;
        for (int r = 0; r < R; r++) total += (size_t)sc[r];
        float *send = malloc((total ? total : 1) * sizeof(float));
        size_t at = 0;
        for (int r = 0; r < R; r++) {
            memcpy(send + at, buf + cut[r] + p0, (size_t)sc[r] * sizeof(float));
            sd[r] = (int)at;
            at += (size_t)sc[r];
        }
        int n_mine = (int)(mine > p0 ? (mine - p0 < PIECE ? mine - p0 : PIECE) : 0);
        for (int r = 0; r < R; r++) rc[r] = n_mine, rd[r] = r * n_mine;
        MPI_Alltoallv(send, sc, sd, MPI_FLOAT, scratch, rc, rd, MPI_FLOAT, d->comm);
        free(send);
        mean_in_rank_order(buf + cut[d->rank] + p0, scratch, (size_t)n_mine, (size_t)n_mine, R);
    }
    free(sc);
}

/* ---- the same reduce-scatter, overlapped ---- */

/* One message per piece of a slice: tag TAG_RS + piece (pieces as above, so counts fit an int). */
#define TAG_RS 17000

static void rs_push(DpRsAsync *x, MPI_Request r) {
    if (x->n_req == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 16;
        x->req = realloc(x->req, (size_t)x->cap * sizeof *x->req);
        if (!x->req) ep_die("out of memory for MPI requests");
    }
    x->req[x->n_req++] = r;
}

void dp_rs_begin(DpRsAsync *x, const Dp *d, float *buf, const size_t *cut, float *scratch) {
    memset(x, 0, sizeof *x);
    x->d = d, x->buf = buf, x->cut = cut, x->scratch = scratch, x->next = d->size;
    if (d->size == 1) return;
    /* every other rank's part of this rank's slice, at scratch + q * mine: the
     * layout dp_reduce_scatter_mean sums (receives first, so no send waits for one) */
    size_t mine = cut[d->rank + 1] - cut[d->rank];
    for (int q = 0; q < d->size; q++) {
        if (q == d->rank) continue;
        for (size_t p0 = 0; p0 < mine; p0 += PIECE) {
            MPI_Request r;
            int n = (int)(mine - p0 < PIECE ? mine - p0 : PIECE);
            MPI_Irecv(scratch + (size_t)q * mine + p0, n, MPI_FLOAT, q, TAG_RS + (int)(p0 / PIECE), d->comm, &r);
            rs_push(x, r);
        }
    }
}

void dp_rs_ready(DpRsAsync *x, size_t from) {
    const Dp *d = x->d;
    if (d->size == 1) return;
    while (x->next > 0 && x->cut[x->next - 1] >= from) {
        int r = --x->next;
        if (r == d->rank) continue; /* this rank's own part stays in buf */
        size_t len = x->cut[r + 1] - x->cut[r];
        for (size_t p0 = 0; p0 < len; p0 += PIECE) {
            MPI_Request q;
            int n = (int)(len - p0 < PIECE ? len - p0 : PIECE);
            MPI_Isend(x->buf + x->cut[r] + p0, n, MPI_FLOAT, r, TAG_RS + (int)(p0 / PIECE), d->comm, &q);
            rs_push(x, q);
        }
    }
    /* large messages move only inside MPI calls (no progress thread): give them one */
    int done;
    if (x->n_req) MPI_Testall(x->n_req, x->req, &done, MPI_STATUSES_IGNORE);
}

void dp_rs_finish(DpRsAsync *x) {
    const Dp *d = x->d;
    int R = d->size;
    if (R == 1) return;
    dp_rs_ready(x, 0);
    MPI_Waitall(x->n_req, x->req, MPI_STATUSES_IGNORE);
    free(x->req);
    x->req = NULL, x->n_req = x->cap = 0;
    /* this rank's own part into its empty place, then the sum in rank order
     * 0, 1, ..., R-1: the same additions, in the same order, as dp_reduce_scatter_mean */
    size_t mine = x->cut[d->rank + 1] - x->cut[d->rank];
    float *dst = x->buf + x->cut[d->rank];
    memcpy(x->scratch + (size_t)d->rank * mine, dst, mine * sizeof(float));
    mean_in_rank_order(dst, x->scratch, mine, mine, R);
}

int dp_padded_shard(const size_t *cut, int size, size_t *shard) {
    size_t S = largest(cut, size);
    *shard = S;
    for (int r = 0; r <= size; r++)
        if (cut[r] != (size_t)r * S) return 0;
    return 1;
}

void dp_allgather(const Dp *d, float *buf, const size_t *cut) {
    int R = d->size;
    if (R == 1) return;
    size_t top = largest(cut, R);
    int *cnt = malloc(2 * R * sizeof(int)), *dsp = cnt + R;
    for (size_t p0 = 0; p0 < top; p0 += PIECE) {
        size_t total = 0;
        for (int r = 0; r < R; r++) {
            size_t len = cut[r + 1] - cut[r];
            cnt[r] = (int)(len > p0 ? (len - p0 < PIECE ? len - p0 : PIECE) : 0);
            dsp[r] = (int)total;
            total += (size_t)cnt[r];
        }
        float *tmp = malloc((total ? total : 1) * sizeof(float));
        MPI_Allgatherv(buf + cut[d->rank] + p0, cnt[d->rank], MPI_FLOAT, tmp, cnt, dsp, MPI_FLOAT, d->comm);
        for (int r = 0; r < R; r++) memcpy(buf + cut[r] + p0, tmp + dsp[r], (size_t)cnt[r] * sizeof(float));
        free(tmp);
    }
    free(cnt);
}

double dp_sum(const Dp *d, double v) {
    if (d->size == 1) return v;
    double *all = malloc(d->size * sizeof(double)), s = 0;
    MPI_Allgather(&v, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, d->comm);
    for (int r = 0; r < d->size; r++) s += all[r];
    free(all);
    return s;
}

unsigned long long dp_sum_u64(const Dp *d, unsigned long long v) {
    unsigned long long s = v;
    if (d->size > 1) MPI_Allreduce(&v, &s, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, d->comm);
    return s;
}

void dp_bcast(const Dp *d, void *buf, size_t bytes, int root) {
    if (d->size > 1) MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, d->comm);
}
