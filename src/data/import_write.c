/* Import files: one table of columns, each a [N, ...] dataset with one row
 * per clip, so creating, appending, truncating, reading and the collective
 * copy of several ranks' clips are each one loop over the table. */
#include "data/import_write.h"
#include "core/die.h"
#include "io/h5util.h"
#include <stdlib.h>
#include <string.h>

enum { COL_LATENTS, COL_POSE, COL_FRAMES, COL_KEYPOINTS, COL_CONF, COL_SRC_FRAME, COL_CROP, COL_REF, COL_VIDEO, N_COLS };

typedef struct {
    const char *name;
    int rank;           /* with N */
    hsize_t dims[5];    /* dims[0] = N */
    hid_t type, mem;    /* stored and memory types */
    int compress;
} Column;

struct ImportFile {
    char *path;
    hid_t file, dset[N_COLS], str;
    Column col[N_COLS];
    long n;
    int parallel;
    int keypoints; /* 0: the keypoint columns are absent (pose videos) */
    float *lat; /* [T,3,H,W] latents of the clip being written */
};

void import_clip_alloc(ImportClip *c, const ModelShape *m, int T) {
    memset(c, 0, sizeof *c);
    size_t px = (size_t)m->H * m->W, spx = (size_t)m->s * m->H * m->s * m->W;
    c->frames = ep_malloc((size_t)T * 3 * px, "clip frames");
    c->pose = ep_malloc((size_t)T * 3 * spx, "clip pose maps");
    c->keypoints = ep_malloc(sizeof(float) * T * FIG_NJOINTS * 2, "clip keypoints");
    c->conf = ep_malloc(sizeof(float) * T * FIG_NJOINTS, "clip confidences");
    c->src_frame = ep_malloc(sizeof(int32_t) * T, "clip source frames");
}

void import_clip_free(ImportClip *c) {
    free(c->frames), free(c->pose), free(c->keypoints), free(c->conf), free(c->src_frame);
    memset(c, 0, sizeof *c);
}

static void set_cols(ImportFile *f, const ModelShape *m, int T) {
    int H = m->H, W = m->W, sH = m->s * m->H, sW = m->s * m->W;
    f->str = H5Tcopy(H5T_C_S1);
    H5Tset_size(f->str, IMPORT_NAME_MAX);
    H5Tset_strpad(f->str, H5T_STR_NULLTERM);
    Column c[N_COLS] = {
        {"/latents", 5, {0, T, 3, H, W}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0},
        {"/pose", 5, {0, T, 3, sH, sW}, H5T_STD_U8LE, H5T_NATIVE_UINT8, 1},
        {"/frames", 5, {0, T, 3, H, W}, H5T_STD_U8LE, H5T_NATIVE_UINT8, 1},
        {"/keypoints", 4, {0, T, FIG_NJOINTS, 2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0},
        {"/keypoint_conf", 3, {0, T, FIG_NJOINTS}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0},
        {"/source_frame", 2, {0, T}, H5T_STD_I32LE, H5T_NATIVE_INT32, 0},
        {"/crop", 2, {0, 4}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0},
        {"/ref_frame", 1, {0}, H5T_STD_I32LE, H5T_NATIVE_INT32, 0},
        {"/source_video", 1, {0}, f->str, f->str, 0},
    };
    memcpy(f->col, c, sizeof c);
}

/* The columns this file has: all, or all but the keypoints'. */
static int has_col(const ImportFile *f, int col) { return f->keypoints || (col != COL_KEYPOINTS && col != COL_CONF); }

static const void *clip_data(ImportFile *f, const ImportClip *c, int col) {
    switch (col) {
    case COL_LATENTS: return f->lat;
    case COL_POSE: return c->pose;
    case COL_FRAMES: return c->frames;
    case COL_KEYPOINTS: return c->keypoints;
    case COL_CONF: return c->conf;
    case COL_SRC_FRAME: return c->src_frame;
    case COL_CROP: return c->crop;
    case COL_REF: return &c->ref_frame;
    default: return c->video;
    }
}

static hsize_t row_bytes(const Column *c) {
    hsize_t b = H5Tget_size(c->type);
    for (int i = 1; i < c->rank; i++) b *= c->dims[i];
    return b;
}

/* Chunks of one clip and about 1 MiB at most for the videos (a loader's clip
 * read touches few chunks, as in datagen's files), many rows for the small columns. */
static hid_t create_col(ImportFile *f, const Column *c, hsize_t n) {
    hsize_t dims[5], maxdims[5], chunk[5];
    for (int i = 0; i < c->rank; i++) dims[i] = maxdims[i] = chunk[i] = c->dims[i];
    dims[0] = n;
    maxdims[0] = f->parallel ? n : H5S_UNLIMITED;
    hsize_t bytes = row_bytes(c);
    if (c->rank >= 3) {
        hsize_t per_frame = bytes / c->dims[1], tc = (1u << 20) / per_frame;
        chunk[0] = 1;
        chunk[1] = tc < 1 ? 1 : tc > c->dims[1] ? c->dims[1] : tc;
    } else {
        chunk[0] = bytes < 4096 ? 4096 / bytes : 1;
    }
    if (f->parallel && chunk[0] > n) chunk[0] = n > 0 ? n : 1;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, c->rank, chunk);
    H5Pset_obj_track_times(dcpl, 0);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    if (c->compress && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) H5Pset_deflate(dcpl, 1);
    hid_t space = H5Screate_simple(c->rank, dims, maxdims);
    hid_t d = H5Dcreate2(f->file, c->name, c->type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) ep_die("'%s': cannot create dataset %s", f->path, c->name);
    H5Sclose(space);
    H5Pclose(dcpl);
    return d;
}

static ImportFile *file_new(const char *path, const ModelShape *m, int T, int keypoints) {
    ImportFile *f = ep_calloc(1, sizeof *f, "import file");
    f->path = strdup(path);
    f->keypoints = keypoints;
    for (int i = 0; i < N_COLS; i++) f->dset[i] = H5I_INVALID_HID;
    set_cols(f, m, T);
    f->lat = ep_malloc(sizeof(float) * T * 3 * m->H * m->W, "clip latents");
    return f;
}

ImportFile *import_file_create(const char *path, const ModelShape *m, int T, int keypoints, MPI_Comm comm, long n) {
    ImportFile *f = file_new(path, m, T, keypoints);
    f->parallel = comm != MPI_COMM_NULL;
    f->file = h5_create(path, comm);
    for (int i = 0; i < N_COLS; i++)
        if (has_col(f, i)) f->dset[i] = create_col(f, &f->col[i], f->parallel ? (hsize_t)n : 0);
    f->n = f->parallel ? n : 0;
    return f;
}

ImportFile *import_file_open_read(const char *path, const ModelShape *m, int T, int keypoints) {
    ImportFile *f = file_new(path, m, T, keypoints);
    f->file = h5_open_read(path, MPI_COMM_NULL);
    for (int i = 0; i < N_COLS; i++)
        if (has_col(f, i) && (f->dset[i] = H5Dopen2(f->file, f->col[i].name, H5P_DEFAULT)) < 0)
            ep_die("'%s': no dataset %s", path, f->col[i].name);
    hsize_t dims[5];
    hid_t s = H5Dget_space(f->dset[COL_REF]);
    H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    f->n = (long)dims[0];
    return f;
}

long import_file_count(const ImportFile *f) { return f->n; }
hid_t import_file_handle(const ImportFile *f) { return f->file; }

/* Row i of every column, selected in the file (or nothing when none). */
static hid_t row_space(ImportFile *f, int col, long i, int none, hid_t *mem) {
    const Column *c = &f->col[col];
    hsize_t start[5] = {0}, count[5];
    for (int k = 0; k < c->rank; k++) count[k] = c->dims[k];
    start[0] = (hsize_t)i;
    count[0] = 1;
    hid_t fs = H5Dget_space(f->dset[col]);
    *mem = H5Screate_simple(c->rank, count, NULL);
    if (none) {
        H5Sselect_none(fs);
        H5Sselect_none(*mem);
    } else {
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    }
    return fs;
}

static void write_row(ImportFile *f, long i, const ImportClip *c) {
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (f->parallel) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE); /* compressed chunks need collective writes */
    if (c) {
        size_t n = (size_t)f->col[COL_LATENTS].dims[1] * 3 * f->col[COL_LATENTS].dims[3] * f->col[COL_LATENTS].dims[4];
        for (size_t k = 0; k < n; k++) f->lat[k] = c->frames[k] / 127.5f - 1.0f; /* as datagen: bytes to [-1, 1] */
    }
    for (int col = 0; col < N_COLS; col++) {
        if (!has_col(f, col)) continue;
        hid_t ms, fs = row_space(f, col, i, c == NULL, &ms);
        const void *buf = c ? clip_data(f, c, col) : f->lat;
        if (H5Dwrite(f->dset[col], f->col[col].mem, ms, fs, dxpl, buf) < 0)
            ep_die("'%s': cannot write clip %ld of %s (disk full?)", f->path, i, f->col[col].name);
        H5Sclose(ms);
        H5Sclose(fs);
    }
    H5Pclose(dxpl);
}

void import_file_append(ImportFile *f, const ImportClip *c) {
    for (int col = 0; col < N_COLS; col++) {
        if (!has_col(f, col)) continue;
        hsize_t dims[5];
        memcpy(dims, f->col[col].dims, sizeof dims);
        dims[0] = (hsize_t)f->n + 1;
        if (H5Dset_extent(f->dset[col], dims) < 0) ep_die("'%s': cannot grow %s", f->path, f->col[col].name);
    }
    write_row(f, f->n++, c);
}

void import_file_truncate(ImportFile *f, long n) {
    for (int col = 0; col < N_COLS; col++) {
        if (!has_col(f, col)) continue;
        hsize_t dims[5];
        memcpy(dims, f->col[col].dims, sizeof dims);
        dims[0] = (hsize_t)n;
        if (H5Dset_extent(f->dset[col], dims) < 0) ep_die("'%s': cannot shrink %s", f->path, f->col[col].name);
    }
    f->n = n;
}

void import_file_write_at(ImportFile *f, long i, const ImportClip *c) { write_row(f, i, c); }

void import_file_read(ImportFile *f, long i, ImportClip *c) {
    for (int col = 0; col < N_COLS; col++) {
        if (col == COL_LATENTS || !has_col(f, col)) continue; /* latents: made again from the frames when written */
        hid_t ms, fs = row_space(f, col, i, 0, &ms);
        if (H5Dread(f->dset[col], f->col[col].mem, ms, fs, H5P_DEFAULT, (void *)clip_data(f, c, col)) < 0)
            ep_die("'%s': cannot read clip %ld of %s", f->path, i, f->col[col].name);
        H5Sclose(ms);
        H5Sclose(fs);
    }
}

void import_file_close(ImportFile *f) {
    if (!f) return;
    for (int i = 0; i < N_COLS; i++)
        if (has_col(f, i)) H5Dclose(f->dset[i]);
    H5Tclose(f->str);
    h5_close(f->file);
    free(f->lat);
    free(f->path);
    free(f);
}
