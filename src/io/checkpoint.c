/* Checkpoints (docs/formats.md "Checkpoint"). Saving is collective: every rank
 * opens "<path>.tmp" through MPI-IO, rank 0 transfers the data (collective
 * writes), all close, then rank 0 renames it to <path> (atomic on POSIX), so
 * a crash or a failed write never leaves a half-written file under <path>.
 *
 * /config is stored as a scalar fixed-length string (NUL-terminated, size =
 * strlen + 1): h5dump shows it as text, h5py reads it as bytes, and it reads
 * back exactly. A comm of MPI_COMM_NULL means one process without MPI-IO. */
#include "io/checkpoint.h"
#include "core/finite.h"
#include "io/checksum.h"
#include "mpi/dp.h"
#include "core/die.h"
#include "io/h5util.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_PATH_MAX 1024

static int comm_rank(MPI_Comm c) { int r = 0; if (c != MPI_COMM_NULL) MPI_Comm_rank(c, &r); return r; }
static int comm_size(MPI_Comm c) { int n = 1; if (c != MPI_COMM_NULL) MPI_Comm_size(c, &n); return n; }
static void comm_barrier(MPI_Comm c) { if (c != MPI_COMM_NULL) MPI_Barrier(c); }
static void comm_bcast(void *buf, int bytes, MPI_Comm c) { if (c != MPI_COMM_NULL) MPI_Bcast(buf, bytes, MPI_BYTE, 0, c); }
static uint64_t comm_sum_u64(uint64_t v, MPI_Comm c) {
    unsigned long long in = v, out = v;
    if (c != MPI_COMM_NULL) MPI_Allreduce(&in, &out, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, c);
    return out;
}

/* The root hyper-parameter attributes, in file order. */

/* The tensor groups, in checksum order. */
enum { G_MODEL, G_M, G_V, G_EMA, N_GROUPS };
static const char *GROUPS[N_GROUPS] = {"/model", "/optimizer/m", "/optimizer/v", "/ema"};

static void tensor_path(char *buf, size_t n, const char *group, const char *name) {
    if ((size_t)snprintf(buf, n, "%s/%s", group, name) >= n) ep_die("internal: tensor path too long");
}

static void dims_of(const ParamInfo *p, hsize_t *dims) {
    for (int i = 0; i < p->ndim; i++) dims[i] = (hsize_t)p->shape[i];
}

/* ------------------------------------------------------------------------- */
/* save */

/* Which part of tensor p this rank stores: the intersection of the tensor's
 * flat range with the rank's own range of the parameter space (dp_range),
 * relative to the tensor's start. */
static void own_part(const ParamInfo *p, size_t lo, size_t hi, size_t *a, size_t *b) {
    size_t s = p->offset, e = p->offset + p->numel;
    size_t x = s > lo ? s : lo, y = e < hi ? e : hi;
    *a = x < y ? x - s : 0;
    *b = x < y ? y - s : 0;
}

/* Where this rank's part of tensor i is in a buffer: a replicated buffer
 * (off NULL: parameters, EMA, dense moments) holds the whole tensor at its
 * parameter offset; a sharded one (ZeRO-1 moments) holds only this rank's part
 * at off[i], and off[i] == (size_t)-1 means the tensor has none anywhere. */
static const float *part_ptr(const ParamTable *pt, const float *x, const size_t *off, int i, size_t a) {
    return off ? x + off[i] : x + pt->info[i].offset + a;
}

/* Every rank writes its part of every tensor of the group (collective). */
static void write_group(hid_t f, const char *group, const ParamTable *pt, const float *x, const size_t *off,
                        Checksum *ck, MPI_Comm comm) {
    char path[CKPT_PATH_MAX];
    hsize_t dims[4];
    size_t lo, hi;
    dp_range(pt->total, comm_rank(comm), comm_size(comm), &lo, &hi);
    for (int i = 0; i < pt->n; i++) {
        const ParamInfo *p = &pt->info[i];
        if (off && off[i] == (size_t)-1) continue; /* a frozen tensor that never trained has no moments */
        size_t a, b;
        own_part(p, lo, hi, &a, &b);
        tensor_path(path, sizeof path, group, p->name);
        dims_of(p, dims);
        h5_create_f32(f, path, p->ndim, dims);
        const float *src = part_ptr(pt, x, off, i, a);
        h5_write_f32_range(f, path, src, a, b);
        checksum_add_range(ck, path, a, src, b - a);
    }
}

static void write_arrays(hid_t f, const CkptState *s) {
    char path[CKPT_PATH_MAX];
    for (int a = 0; a < s->n_arrays; a++) {
        const CkptArray *A = &s->arrays[a];
        if (A->rows <= 0) continue;
        snprintf(path, sizeof path, "/schedule/%s", A->name);
        hsize_t dims[2] = {(hsize_t)A->rows, (hsize_t)A->cols};
        int rank = A->cols ? 2 : 1;
        if (A->as_int32) {
            size_t n = (size_t)A->rows * (A->cols ? A->cols : 1);
            int32_t *tmp = ep_malloc(n * sizeof(int32_t), "schedule");
            for (size_t i = 0; i < n; i++) tmp[i] = (int32_t)A->data[i];
            h5_write_i32(f, path, tmp, rank, dims, 0);
            free(tmp);
        } else {
            h5_write_f64(f, path, A->data, rank, dims, 0);
        }
    }
}
static void read_arrays(hid_t f, const char *file, CkptState *s) {
    char path[CKPT_PATH_MAX];
    for (int a = 0; a < s->n_arrays; a++) {
        CkptArray *A = &s->arrays[a];
        A->rows = 0;
        snprintf(path, sizeof path, "/schedule/%s", A->name);
        if (!h5_exists(f, path)) continue;
        hsize_t dims[4];
        int rank = h5_dims(f, file, path, dims, 4);
        int cols = rank == 2 ? (int)dims[1] : 0;
        if (rank < 1 || rank > 2 || cols != A->cols || dims[0] > (hsize_t)A->cap_rows)
            ep_die("checkpoint '%s': %s has an unexpected shape (want %s%d columns, at most %d rows)", file, path,
                   A->cols ? "" : "0 = 1-D, ", A->cols, A->cap_rows);
        hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
        if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, A->data) < 0)
            ep_die("checkpoint '%s': cannot read %s", file, path);
        H5Dclose(d);
        A->rows = (int)dims[0];
    }
}

static void write_config(hid_t f, const char *text, int mpio, int me) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(text) + 1);
    H5Tset_strpad(type, H5T_STR_NULLTERM);
    H5Tset_cset(type, H5T_CSET_UTF8); /* decks may hold UTF-8 comments */
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(f, "/config", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    char why[768];
    if (d < 0) ep_die("cannot create dataset /config in %s", h5_write_failure(f, why, sizeof why));
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (mpio) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    hid_t sel = H5Scopy(space);
    if (me != 0) H5Sselect_none(sel); /* collective call, one writer */
    errno = 0;
    if (H5Dwrite(d, type, sel, sel, dxpl, text) < 0) ep_die("cannot write dataset /config to %s", h5_write_failure(f, why, sizeof why));
    H5Sclose(sel);
    H5Pclose(dxpl);
    H5Dclose(d);
    H5Sclose(space);
    H5Tclose(type);
}

static void write_root_attrs(hid_t f, const ModelShape *m) {
    char desc[128];
    shape_describe(m, desc, sizeof desc);
    h5_attr_int(f, "/", "format_version", CKPT_FORMAT_VERSION);
    h5_attr_str(f, "/", "model", desc);
    ModelShape copy = *m;
    for (int i = 0; i < SHAPE_N_KEYS; i++) h5_attr_int(f, "/", SHAPE_KEY_NAMES[i], *shape_key(&copy, i));
    h5_attr_str(f, "/", "frame_embed", shape_frame_embed_name(m));
}

/* Attributes must be identical on every rank: take rank 0's state. */
typedef struct {
    long long step, samples_seen;
    int n_rng, bad_steps;
    Rng rng[CKPT_MAX_RNG];
} SavedState;

static void write_state(hid_t f, const CkptState *s, MPI_Comm comm) {
    SavedState st = {.step = s->step, .samples_seen = s->samples_seen, .n_rng = s->n_rng, .bad_steps = s->bad_steps};
    if (s->n_rng < 0 || s->n_rng > CKPT_MAX_RNG) ep_die("internal: n_rng = %d outside [0, %d]", s->n_rng, CKPT_MAX_RNG);
    memcpy(st.rng, s->rng, sizeof st.rng);
    comm_bcast(&st, (int)sizeof st, comm);
    hid_t g = H5Gcreate2(f, "/state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) ep_die("cannot create group /state");
    H5Gclose(g);
    h5_attr_int(f, "/state", "step", st.step);
    h5_attr_int(f, "/state", "samples_seen", st.samples_seen);
    h5_attr_int(f, "/state", "bad_steps", st.bad_steps);
    h5_attr_int(f, "/state", "world_size", comm_size(comm));
    h5_attr_int(f, "/state", "n_rng", st.n_rng);
    uint64_t words[4 * CKPT_MAX_RNG];
    for (int r = 0; r < st.n_rng; r++) memcpy(words + 4 * r, st.rng[r].s, sizeof st.rng[r].s);
    if (st.n_rng > 0) h5_attr_u64_array(f, "/state", "rng", words, 4 * st.n_rng);
    if (s->numerics[0]) h5_attr_str(f, "/state", "numerics", s->numerics);
}

/* Rank 0 checks that it can create <path>.tmp, so an unwritable folder gets a
 * message about the checkpoint (with errno) instead of a generic HDF5 one. */
static void probe_writable(const char *path, const char *tmp, MPI_Comm comm) {
    int err = 0;
    if (comm_rank(comm) == 0) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) err = errno;
        else close(fd);
    }
    comm_bcast(&err, (int)sizeof err, comm);
    if (err) ep_die("cannot write checkpoint '%s': cannot create '%s': %s", path, tmp, strerror(err));
}

/* Data on disk before the rename, and the rename itself on disk after it. */
static void sync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) ep_die("cannot write checkpoint: cannot open '%s' to sync it: %s", path, strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL) /* EINVAL: a file system without fsync for folders */
        ep_die("cannot write checkpoint: syncing '%s' failed: %s", path, strerror(errno));
    close(fd);
}

static void publish(const char *tmp, const char *path) {
    sync_path(tmp, O_RDONLY);
    if (rename(tmp, path) != 0) ep_die("cannot rename checkpoint '%s' to '%s': %s", tmp, path, strerror(errno));
    char dir[CKPT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0; /* "/name": the root folder */
    else *slash = 0;
    sync_path(dir, O_RDONLY | O_DIRECTORY);
}

void ckpt_save(const char *path, const CkptState *s, MPI_Comm comm) {
    char tmp[CKPT_PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) ep_die("checkpoint path '%s' is too long", path);
    int me = comm_rank(comm), mpio = comm != MPI_COMM_NULL;
    probe_writable(path, tmp, comm);
    hid_t f = h5_create(tmp, comm); /* removed if any write below fails */
    write_root_attrs(f, &s->shape);
    if (s->deck_text) write_config(f, s->deck_text, mpio, me);
    write_state(f, s, comm);
    Checksum ck;
    checksum_init(&ck);
    const float *bufs[N_GROUPS] = {s->params, s->m, s->v, s->ema};
    if (!s->m && s->v) ep_die("internal: checkpoint '%s' has AdamW second moments without first moments", path);
    for (int g = 0; g < N_GROUPS; g++)
        if (bufs[g]) write_group(f, GROUPS[g], s->pt, bufs[g], g == G_M || g == G_V ? s->opt_off : NULL, &ck, comm);
    if (s->opt_t) {
        double *t = ep_malloc(s->pt->n * sizeof(double), "optimizer counts");
        for (int i = 0; i < s->pt->n; i++) t[i] = (double)s->opt_t[i];
        hsize_t n = (hsize_t)s->pt->n;
        h5_write_f64(f, "/optimizer/t", t, 1, &n, 0);
        free(t);
    }
    write_arrays(f, s);
    ck.h = comm_sum_u64(ck.h, comm); /* each rank hashed the part it wrote */
    h5_attr_u64_array(f, "/", "checksum", &ck.h, 1);
    int partial = ep_partial_begin(tmp); /* until it is renamed */
    h5_close(f);
    comm_barrier(comm);
    if (me == 0) publish(tmp, path);
    ep_partial_done(partial);
    comm_barrier(comm);
}

/* ------------------------------------------------------------------------- */
/* load */

static void read_shape_attrs(hid_t f, const char *path, ModelShape *m) {
    memset(m, 0, sizeof *m);
    for (int i = 0; i < SHAPE_N_KEYS; i++) {
        const char *name = SHAPE_KEY_NAMES[i];
        if (i == 0 && !h5_has_attr(f, "/", name)) continue; /* F: absent in bare weights */
        if (!h5_has_attr(f, "/", name))
            ep_die("'%s' lacks the root attribute '%s' (not an EP-VDiT checkpoint or weights file?)", path, name);
        *shape_key(m, i) = (int)h5_get_attr_int(f, path, "/", name);
    }
    shape_set_frame_embed(m, "input"); /* files written before the attribute */
    if (h5_has_attr(f, "/", "frame_embed")) {
        char *v = h5_get_attr_str(f, path, "/", "frame_embed");
        if (!shape_set_frame_embed(m, v))
            ep_die("'%s': root attribute frame_embed = '%s' is neither 'input' nor 'temporal'", path, v);
        free(v);
    }
}

void ckpt_read_shape(const char *path, ModelShape *shape) {
    hid_t f = h5_open_read(path, MPI_COMM_NULL);
    read_shape_attrs(f, path, shape);
    h5_close(f);
}

static void check_shape(hid_t f, const char *path, const ModelShape *want) {
    ModelShape have;
    read_shape_attrs(f, path, &have);
    ModelShape w = *want;
    for (int i = 1; i < SHAPE_N_KEYS; i++) /* F excepted: it only sizes activations */
        if (*shape_key(&have, i) != *shape_key(&w, i))
            ep_die("checkpoint '%s' has %s = %d but the model has %s = %d", path, SHAPE_KEY_NAMES[i],
                   *shape_key(&have, i), SHAPE_KEY_NAMES[i], *shape_key(&w, i));
    shape_warn_frame_embed(path, &have, want);
}

/* Every link in a tensor group must be a parameter of the table. */
static void check_no_extras(hid_t f, const char *path, const char *group, const ParamTable *pt) {
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    if (g < 0) ep_die("'%s': %s is not a group", path, group);
    H5G_info_t info;
    H5Gget_info(g, &info);
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[256];
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (param_find(pt, name) < 0)
            ep_die("checkpoint '%s' has %s/%s, which is not a parameter of this model", path, group, name);
    }
    H5Gclose(g);
}

/* Reads the tensors of one group present in the file (all of them for
 * /model): a replicated buffer gets whole tensors, a sharded one this rank's
 * parts, no buffer (or no slot) a read into scratch. Only this rank's part of
 * each tensor enters its checksum, so the ranks' sums add up to the file's. */
static void read_group(hid_t f, const char *path, const char *group, const ParamTable *pt, float *x,
                       const size_t *off, float *scratch, int required, Checksum *ck, MPI_Comm comm) {
    char name[CKPT_PATH_MAX];
    hsize_t dims[4];
    size_t lo, hi;
    dp_range(pt->total, comm_rank(comm), comm_size(comm), &lo, &hi);
    check_no_extras(f, path, group, pt);
    for (int i = 0; i < pt->n; i++) {
        const ParamInfo *p = &pt->info[i];
        tensor_path(name, sizeof name, group, p->name);
        if (!h5_exists(f, name)) {
            if (required) ep_die("checkpoint '%s' lacks the tensor %s", path, name);
            continue;
        }
        size_t a, b;
        own_part(p, lo, hi, &a, &b);
        dims_of(p, dims);
        const float *got;
        size_t n_got;
        if (x && !off) { /* replicated: the whole tensor */
            h5_read_f32(f, path, name, x + p->offset, p->ndim, dims);
            checksum_add_range(ck, name, a, x + p->offset + a, b - a);
            got = x + p->offset, n_got = p->numel;
        } else {
            float *dst = x && off[i] != (size_t)-1 ? x + off[i] : scratch;
            h5_read_f32_range(f, path, name, dst, p->ndim, dims, a, b);
            checksum_add_range(ck, name, a, dst, b - a);
            got = dst, n_got = b - a;
        }
        size_t j = first_nonfinite(got, n_got);
        if (j < n_got) ep_die("'%s': tensor %s holds a non-finite value (%g): refused", path, name, (double)got[j]);
    }
}

static void read_state(hid_t f, const char *path, CkptState *s) {
    s->step = h5_get_attr_int(f, path, "/state", "step");
    s->samples_seen = h5_get_attr_int(f, path, "/state", "samples_seen");
    s->bad_steps = 0; /* files written before the attribute */
    if (h5_has_attr(f, "/state", "bad_steps")) {
        long long b = h5_get_attr_int(f, path, "/state", "bad_steps");
        if (b < 0 || b > 1 << 30) ep_die("checkpoint '%s': /state bad_steps = %lld is not a count", path, b);
        s->bad_steps = (int)b;
    }
    long long n = h5_get_attr_int(f, path, "/state", "n_rng");
    if (n < 0 || n > CKPT_MAX_RNG) ep_die("checkpoint '%s': /state n_rng = %lld outside [0, %d]", path, n, CKPT_MAX_RNG);
    s->n_rng = (int)n;
    uint64_t words[4 * CKPT_MAX_RNG];
    if (n > 0) h5_get_attr_u64_array(f, path, "/state", "rng", words, 4 * (int)n);
    for (int r = 0; r < s->n_rng; r++) memcpy(s->rng[r].s, words + 4 * r, sizeof s->rng[r].s);
    s->numerics[0] = 0;
    if (h5_has_attr(f, "/state", "numerics")) {
        char *v = h5_get_attr_str(f, path, "/state", "numerics");
        snprintf(s->numerics, sizeof s->numerics, "%s", v);
        free(v);
    }
}

int ckpt_load(const char *path, CkptState *s, MPI_Comm comm) {
    hid_t f = h5_open_read(path, comm);
    if (h5_has_attr(f, "/", "format_version")) {
        long long v = h5_get_attr_int(f, path, "/", "format_version");
        if (v > CKPT_FORMAT_VERSION)
            ep_die("checkpoint '%s' has format_version %lld; this build reads up to %d", path, v, CKPT_FORMAT_VERSION);
        if (v < 2 && h5_has_attr(f, "/", "checksum"))
            ep_die("checkpoint '%s' has format_version %lld, whose checksum this build no longer computes; "
                   "load its weights through a bare weights file or write it again", path, v);
    }
    check_shape(f, path, &s->shape);
    int has_state = h5_exists(f, "/state"), has_sum = h5_has_attr(f, "/", "checksum");
    if (has_state && !has_sum) ep_die("checkpoint '%s' has no checksum attribute (refused: damaged or not written by entprog)", path);
    if (!h5_exists(f, "/model")) ep_die("'%s' has no /model group (not a checkpoint or weights file?)", path);
    int has_m = h5_exists(f, GROUPS[G_M]), has_v = h5_exists(f, GROUPS[G_V]);
    /* m alone is SGD's momentum buffer; m and v are AdamW's moments */
    if (has_v && !has_m) ep_die("checkpoint '%s' has /optimizer/v without /optimizer/m", path);
    if (s->m && s->v && has_m && !has_v)
        ep_die("checkpoint '%s' holds SGD momentum, not AdamW moments: set train.optimizer = sgd to resume it", path);
    if (s->m && !s->v && has_v)
        ep_die("checkpoint '%s' holds AdamW moments: set train.optimizer = adamw to resume it", path);
    int has_ema = h5_exists(f, GROUPS[G_EMA]);

    size_t biggest = 0;
    for (int i = 0; i < s->pt->n; i++)
        if (s->pt->info[i].numel > biggest) biggest = s->pt->info[i].numel;
    float *scratch = ep_malloc(biggest * sizeof(float), "checkpoint scratch");
    Checksum ck;
    checksum_init(&ck);
    float *dst[N_GROUPS] = {s->params, s->m, s->v, s->ema};
    int present[N_GROUPS] = {1, has_m, has_v, has_ema};
    for (int g = 0; g < N_GROUPS; g++)
        if (present[g])
            read_group(f, path, GROUPS[g], s->pt, dst[g], g == G_M || g == G_V ? s->opt_off : NULL, scratch,
                       g == G_MODEL, &ck, comm);
    free(scratch);

    if (has_sum) {
        uint64_t want;
        h5_get_attr_u64_array(f, path, "/", "checksum", &want, 1);
        ck.h = comm_sum_u64(ck.h, comm);
        if (want != ck.h) ep_die("checkpoint '%s' failed its checksum (corrupt?)", path);
    }
    if (s->opt_t) {
        memset(s->opt_t, 0, s->pt->n * sizeof(long long));
        if (h5_exists(f, "/optimizer/t")) {
            double *t = ep_malloc(s->pt->n * sizeof(double), "optimizer counts");
            hsize_t n = (hsize_t)s->pt->n;
            h5_read_f64(f, path, "/optimizer/t", t, 1, &n);
            for (int i = 0; i < s->pt->n; i++) s->opt_t[i] = (long long)t[i];
            free(t);
        }
    }
    read_arrays(f, path, s);
    int flags = (has_m ? CKPT_HAS_OPT : 0) | (has_ema ? CKPT_HAS_EMA : 0);
    if (has_state) {
        read_state(f, path, s);
        flags |= CKPT_HAS_STATE;
    } else {
        flags |= CKPT_BARE;
    }
    h5_close(f);
    return flags;
}

int ckpt_moment_mask(const char *path, const ParamTable *pt, uint8_t *mask) {
    hid_t f = h5_open_read(path, MPI_COMM_NULL);
    char name[CKPT_PATH_MAX];
    int n = 0;
    for (int i = 0; i < pt->n; i++) {
        tensor_path(name, sizeof name, GROUPS[G_M], pt->info[i].name);
        mask[i] = h5_exists(f, name) ? 1 : 0;
        n += mask[i];
    }
    h5_close(f);
    return n;
}

/* ------------------------------------------------------------------------- */
/* /config */

static char *read_config_string(hid_t d, hid_t type, const char *path) {
    char *text;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(type)); /* HDF5 will not convert ASCII <-> UTF-8 */
    if (H5Tis_variable_str(type) > 0) { /* h5py's default for str */
        char *vs = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &vs) < 0) ep_die("'%s': cannot read /config", path);
        text = strdup(vs ? vs : "");
        H5free_memory(vs);
    } else {
        size_t n = H5Tget_size(type);
        text = ep_calloc(n + 1, 1, "/config");
        H5Tset_size(mt, n + 1);
        if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, text) < 0) ep_die("'%s': cannot read /config", path);
    }
    H5Tclose(mt);
    return text;
}

/* A 1-D uint8 array is accepted too (np.frombuffer(text.encode(), np.uint8)). */
static char *read_config_bytes(hid_t f, const char *path) {
    hsize_t n;
    if (h5_dims(f, path, "/config", &n, 1) != 1) ep_die("'%s': /config is neither text nor a 1-D byte array", path);
    char *text = ep_calloc(n + 1, 1, "/config");
    h5_read_u8(f, path, "/config", (uint8_t *)text, 1, &n);
    return text;
}

char *ckpt_read_config(const char *path) {
    hid_t f = h5_open_read(path, MPI_COMM_NULL);
    char *text = NULL;
    if (h5_exists(f, "/config")) {
        hid_t d = H5Dopen2(f, "/config", H5P_DEFAULT);
        if (d < 0) ep_die("'%s': /config is not a dataset", path);
        hid_t type = H5Dget_type(d);
        H5T_class_t cls = H5Tget_class(type);
        if (cls == H5T_STRING) text = read_config_string(d, type, path);
        H5Tclose(type);
        H5Dclose(d);
        if (cls == H5T_INTEGER) text = read_config_bytes(f, path);
        else if (cls != H5T_STRING) ep_die("'%s': /config is neither text nor a byte array", path);
    }
    h5_close(f);
    return text;
}
