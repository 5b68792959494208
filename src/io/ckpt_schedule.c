/* /schedule/cei and /schedule/order of a checkpoint (ckpt_schedule.h).
 * The edit goes through a byte copy so the file under its final name is
 * always complete: HDF5 rewrites metadata in place when a file is modified,
 * and a crash in the middle of that would corrupt the only copy. */
#define _POSIX_C_SOURCE 200809L
#include "io/ckpt_schedule.h"
#include "core/die.h"
#include "io/h5util.h"
#include "io/safetensors.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHED_PATH_MAX 1024

/* Index of the first problem with order, or -1 when it is a permutation of 0..L-1. */
static int first_bad_entry(const int *order, int L) {
    char *seen = ep_calloc((size_t)L, 1, "permutation check");
    int bad = -1;
    for (int k = 0; k < L && bad < 0; k++) {
        if (order[k] < 0 || order[k] >= L || seen[order[k]]) bad = k;
        else seen[order[k]] = 1;
    }
    free(seen);
    return bad;
}

static void require_permutation(const char *path, const int *order, int L) {
    int k = first_bad_entry(order, L);
    if (k >= 0)
        ep_die("'%s': /schedule/order is not a permutation of the blocks 0..%d (entry %d is %d: out of range or repeated)",
               path, L - 1, k, order[k]);
}

/* The file must be one of ours and have L blocks, so a schedule never lands in the wrong model's file. */
static void check_target(const char *path, int L) {
    hid_t f = h5_open_read(path, MPI_COMM_NULL); /* dies on a missing or non-HDF5 file */
    if (!h5_exists(f, "/model")) ep_die("'%s' has no /model group (not a checkpoint or weights file?)", path);
    if (!h5_has_attr(f, "/", "L")) ep_die("'%s' lacks the root attribute 'L' (not an EP-VDiT checkpoint?)", path);
    long long have = h5_get_attr_int(f, path, "/", "L");
    if (have != L) ep_die("'%s' is a model with L = %lld blocks but the schedule has %d entries", path, have, L);
    h5_close(f);
}

/* Byte-for-byte copy of src to dst (created or truncated, with src's permission bits). */
static void copy_file(const char *src, const char *dst) {
    int in = open(src, O_RDONLY);
    if (in < 0) ep_die("cannot read '%s': %s", src, strerror(errno));
    struct stat st;
    if (fstat(in, &st) != 0) ep_die("cannot stat '%s': %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, st.st_mode & 0777);
    if (out < 0) ep_die("cannot write the schedule of '%s': cannot create '%s': %s", src, dst, strerror(errno));
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) ep_die("cannot read '%s': %s", src, strerror(errno));
        if (n == 0) break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) ep_die("cannot write '%s': %s (disk full?)", dst, strerror(errno));
            done += w;
        }
    }
    close(in);
    if (close(out) != 0) ep_die("cannot write '%s': %s", dst, strerror(errno));
}

/* Replaces the two datasets in an open file; other /schedule entries (stages) stay. */
static void put_schedule(hid_t f, const double *cei, const int *order, int L) {
    if (h5_exists(f, "/schedule/cei") && H5Ldelete(f, "/schedule/cei", H5P_DEFAULT) < 0)
        ep_die("cannot remove the old /schedule/cei");
    if (h5_exists(f, "/schedule/order") && H5Ldelete(f, "/schedule/order", H5P_DEFAULT) < 0)
        ep_die("cannot remove the old /schedule/order");
    int32_t *o32 = ep_malloc((size_t)L * sizeof(int32_t), "schedule order");
    for (int k = 0; k < L; k++) o32[k] = order[k];
    hsize_t dims = (hsize_t)L;
    h5_write_f64(f, "/schedule/cei", cei, 1, &dims, 0);
    h5_write_i32(f, "/schedule/order", o32, 1, &dims, 0);
    free(o32);
}

static void sync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* The folder holding path, so the rename itself reaches the disk. */
static void sync_parent(const char *path) {
    char dir[SCHED_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    sync_path(dir, O_RDONLY | O_DIRECTORY);
}

void ckpt_write_cei(const char *path, const double *cei, const int *order, int L) {
    if (L < 1) ep_die("internal: ckpt_write_cei with L = %d", L);
    require_permutation(path, order, L);
    for (int b = 0; b < L; b++)
        if (!isfinite(cei[b])) ep_die("'%s': refusing to store a non-finite CEI score for block %d (%g)", path, b, cei[b]);
    check_target(path, L);
    char tmp[SCHED_PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) ep_die("path '%s' is too long", path);
    copy_file(path, tmp);

    h5_quiet();
    hid_t f = H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) ep_die("cannot open '%s' (the copy of '%s') for writing", tmp, path);
    put_schedule(f, cei, order, L);
    if (H5Fclose(f) < 0) ep_die("cannot finish writing '%s' (disk full?); '%s' is unchanged", tmp, path);
    sync_path(tmp, O_RDONLY);
    if (rename(tmp, path) != 0) ep_die("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    sync_parent(path);
}

/* A float64 [L] dataset, any stored float type. */
static void read_f64_vector(hid_t f, const char *path, const char *dset, double *out, int L) {
    hsize_t dims[8];
    int rank = h5_dims(f, path, dset, dims, 8);
    if (rank != 1 || dims[0] != (hsize_t)L)
        ep_die("'%s': %s should be a vector of L = %d values (rank %d, first dimension %llu)", path, dset, L, rank,
               rank > 0 ? (unsigned long long)dims[0] : 1ull);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        ep_die("'%s': cannot read %s as numbers", path, dset);
    H5Dclose(d);
}

int ckpt_read_cei(const char *path, double *cei, int *order, int L) {
    if (st_is_safetensors(path)) return 0; /* train.init may be bare weights: no ranking, score CEI */
    hid_t f = h5_open_read(path, MPI_COMM_NULL);
    int has_cei = h5_exists(f, "/schedule/cei"), has_order = h5_exists(f, "/schedule/order");
    if (!has_cei && !has_order) {
        h5_close(f);
        return 0;
    }
    if (!has_cei || !has_order)
        ep_die("'%s' has /schedule/%s without /schedule/%s", path, has_cei ? "cei" : "order", has_cei ? "order" : "cei");
    read_f64_vector(f, path, "/schedule/cei", cei, L);
    int32_t *o32 = ep_malloc((size_t)L * sizeof(int32_t), "schedule order");
    hsize_t dims = (hsize_t)L;
    h5_read_i32(f, path, "/schedule/order", o32, 1, &dims);
    h5_close(f);
    for (int k = 0; k < L; k++) order[k] = o32[k];
    free(o32);
    require_permutation(path, order, L);
    return 1;
}
