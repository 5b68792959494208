#include "data/dataset.h"
#include "core/finite.h"
#include "core/die.h"
#include "io/h5util.h"
#include <hdf5.h>
#include <stdint.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DATASET_FORMAT_VERSION 1
#define DATASET_CHUNK_CACHE (8u << 20) /* bytes per dataset: holds a clip's chunks */

struct Dataset {
    char *path;
    hid_t file, lat, pose;
    int N, T, C, H, W, Cp, sH, sW, stride;
    int pose_u8;      /* 1: uint8 maps scaled by 1/255; 0: float32 as stored */
    uint8_t *u8;      /* staging buffer for uint8 pose clips */
    size_t u8_cap;
    int first, picks; /* dataset_pick draws videos first .. first + picks - 1 (dataset_restrict) */
};

static hid_t open_dset(const char *path, hid_t f, const char *name, const char *what) {
    if (!h5_exists(f, name)) ep_die("'%s' has no %s dataset (%s), which docs/formats.md requires", path, name, what);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, 521, DATASET_CHUNK_CACHE, 0.75);
    hid_t d = H5Dopen2(f, name, dapl);
    H5Pclose(dapl);
    if (d < 0) ep_die("'%s': %s is not a dataset", path, name);
    return d;
}

/* Rank-5 dims of a dataset, dying with the expected layout when not. */
static void dims5(const char *path, hid_t d, const char *name, const char *layout, hsize_t dims[5]) {
    hid_t s = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(s);
    if (r != 5) ep_die("'%s': %s has rank %d, expected 5 %s", path, name, r, layout);
    H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
}

static const char *type_name(hid_t t) {
    switch (H5Tget_class(t)) {
    case H5T_FLOAT: return H5Tget_size(t) == 8 ? "float64" : H5Tget_size(t) == 2 ? "float16" : "float";
    case H5T_INTEGER: return H5Tget_sign(t) == H5T_SGN_NONE ? "unsigned integer" : "signed integer";
    case H5T_STRING: return "string";
    default: return "non-numeric";
    }
}

static void check_types(Dataset *ds) {
    hid_t t = H5Dget_type(ds->lat);
    int ok = H5Tget_class(t) == H5T_FLOAT && (H5Tget_size(t) == 4 || H5Tget_size(t) == 2);
    if (!ok) ep_die("'%s': /latents has unsupported type %s (%zu bytes); expected float32 or float16", ds->path, type_name(t), H5Tget_size(t));
    H5Tclose(t);
    t = H5Dget_type(ds->pose);
    if (H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE) ds->pose_u8 = 1;
    else if (H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4) ds->pose_u8 = 0;
    else ep_die("'%s': /pose has unsupported type %s (%zu bytes); expected uint8 or float32", ds->path, type_name(t), H5Tget_size(t));
    H5Tclose(t);
}

static void need_dim(const Dataset *ds, const char *dset, const char *dim, long long have, const char *key, long long want) {
    if (have != want)
        ep_die("'%s': %s has %s = %lld but the model needs %s = %lld", ds->path, dset, dim, have, key, want);
}

Dataset *dataset_open(const char *path, const ModelShape *m, int frame_stride) {
    if (frame_stride < 1) ep_die("'%s': frame_stride = %d, must be >= 1", path, frame_stride);
    Dataset *ds = ep_calloc(1, sizeof *ds, "dataset");
    ds->path = strdup(path);
    ds->stride = frame_stride;
    ds->file = h5_open_read(path, MPI_COMM_NULL); /* dies on a missing or non-HDF5 file */
    if (!h5_has_attr(ds->file, "/", "format_version"))
        ep_die("'%s' lacks the root attribute format_version (not a dataset file of docs/formats.md?)", path);
    long long ver = h5_get_attr_int(ds->file, path, "/", "format_version");
    if (ver != DATASET_FORMAT_VERSION)
        ep_die("'%s': format_version = %lld, this build reads version %d", path, ver, DATASET_FORMAT_VERSION);
    ds->lat = open_dset(path, ds->file, "/latents", "[N,T,C,H,W] latents");
    ds->pose = open_dset(path, ds->file, "/pose", "[N,T,Cp,sH,sW] pose maps");
    hsize_t l[5], p[5];
    dims5(path, ds->lat, "/latents", "[N,T,C,H,W]", l);
    dims5(path, ds->pose, "/pose", "[N,T,Cp,sH,sW]", p);
    check_types(ds);
    for (int i = 0; i < 5; i++)
        if (l[i] > INT_MAX || p[i] > INT_MAX)
            ep_die("'%s': %s has a dimension of %llu, more than this build reads (%d)", path, l[i] > INT_MAX ? "/latents" : "/pose",
                   (unsigned long long)(l[i] > INT_MAX ? l[i] : p[i]), INT_MAX);
    ds->N = (int)l[0], ds->T = (int)l[1], ds->C = (int)l[2], ds->H = (int)l[3], ds->W = (int)l[4];
    ds->Cp = (int)p[2], ds->sH = (int)p[3], ds->sW = (int)p[4];
    if (p[0] != l[0] || p[1] != l[1])
        ep_die("'%s': /pose holds %llu videos x %llu frames but /latents %llu x %llu", path,
               (unsigned long long)p[0], (unsigned long long)p[1], (unsigned long long)l[0], (unsigned long long)l[1]);
    if (ds->N == 0) ep_die("'%s': the dataset holds no videos (N = 0)", path);
    ds->first = 0, ds->picks = ds->N;
    need_dim(ds, "/latents", "C", ds->C, "model.C", m->C);
    need_dim(ds, "/latents", "H", ds->H, "model.H", m->H);
    need_dim(ds, "/latents", "W", ds->W, "model.W", m->W);
    need_dim(ds, "/pose", "Cp", ds->Cp, "model.Cp", m->Cp);
    if (ds->sH != (long long)m->s * m->H && ds->sH % m->H == 0 && ds->sW == (long long)ds->sH / m->H * m->W)
        ep_die("'%s': /pose maps are %dx%d, %d times the latents' %dx%d, but model.s = %d: set model.s = %d "
               "(a dataset from `entprog encode --dataset-in` keeps the pixel-size pose maps, docs/vae.md)", path,
               ds->sH, ds->sW, ds->sH / m->H, m->H, m->W, m->s, ds->sH / m->H);
    need_dim(ds, "/pose", "sH", ds->sH, "s*H", (long long)m->s * m->H);
    need_dim(ds, "/pose", "sW", ds->sW, "s*W", (long long)m->s * m->W);
    long long span = (long long)(m->F - 1) * frame_stride + 1;
    if (ds->T < span)
        ep_die("'%s': videos have T = %d frames, but a clip of F = %d frames at frame_stride = %d spans %lld",
               path, ds->T, m->F, frame_stride, span);
    return ds;
}

int dataset_videos(const Dataset *ds) { return ds->N; }
int dataset_frames(const Dataset *ds) { return ds->T; }
int dataset_stride(const Dataset *ds) { return ds->stride; }
const char *dataset_path(const Dataset *ds) { return ds->path; }

/* Read frames start, start+stride, ... (F of them) of one video into buf. */
static void read_frames(const Dataset *ds, hid_t d, const char *name, hid_t memtype, int video, int start,
                        int F, int stride, void *buf) {
    hid_t fs = H5Dget_space(d);
    hsize_t dims[5];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    hsize_t off[5] = {(hsize_t)video, (hsize_t)start, 0, 0, 0};
    hsize_t step[5] = {1, (hsize_t)stride, 1, 1, 1};
    hsize_t count[5] = {1, (hsize_t)F, dims[2], dims[3], dims[4]};
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, step, count, NULL);
    hid_t ms = H5Screate_simple(5, count, NULL);
    if (H5Dread(d, memtype, ms, fs, H5P_DEFAULT, buf) < 0)
        ep_die("'%s': cannot read %s, video %d, frames from %d (corrupt or truncated file?)", ds->path, name, video, start);
    H5Sclose(ms);
    H5Sclose(fs);
    if (memtype != H5T_NATIVE_FLOAT) return;
    const float *x = buf;
    size_t n = (size_t)F * dims[2] * dims[3] * dims[4];
    size_t i = first_nonfinite(x, n);
    if (i < n) /* a NaN in the data would poison the weights a step later */
        ep_die("'%s': %s of video %d holds a non-finite value (%g) in frames from %d: refused", ds->path, name,
               video, (double)x[i], start);
}

static void check_range(const Dataset *ds, int video, int start, int F, int stride) {
    if (video < 0 || video >= ds->N) ep_die("'%s': video %d out of range [0, %d)", ds->path, video, ds->N);
    long long last = start + (long long)(F - 1) * stride;
    if (F < 1 || start < 0 || last >= ds->T)
        ep_die("'%s': clip of %d frames from frame %d at stride %d leaves the video's %d frames", ds->path, F, start, stride, ds->T);
}

void dataset_read_clip(Dataset *ds, int video, int start, int F, float *x0, float *pose) {
    check_range(ds, video, start, F, ds->stride);
    read_frames(ds, ds->lat, "/latents", H5T_NATIVE_FLOAT, video, start, F, ds->stride, x0);
    size_t n = (size_t)F * ds->Cp * ds->sH * ds->sW;
    if (!ds->pose_u8) {
        read_frames(ds, ds->pose, "/pose", H5T_NATIVE_FLOAT, video, start, F, ds->stride, pose);
        return;
    }
    if (ds->u8_cap < n) {
        free(ds->u8);
        ds->u8 = ep_malloc(n, "pose staging buffer");
        ds->u8_cap = n;
    }
    read_frames(ds, ds->pose, "/pose", H5T_NATIVE_UINT8, video, start, F, ds->stride, ds->u8);
    for (size_t i = 0; i < n; i++) pose[i] = ds->u8[i] / 255.0f; /* exactly x/255, as numpy/torch do */
}

void dataset_read_frame(Dataset *ds, int video, int frame, float *ref) {
    check_range(ds, video, frame, 1, 1);
    read_frames(ds, ds->lat, "/latents", H5T_NATIVE_FLOAT, video, frame, 1, 1, ref);
}

void dataset_pick(const Dataset *ds, Rng *r, int F, int *video, int *start, int *ref_frame) {
    int span = (F - 1) * ds->stride + 1;
    if (F < 1 || span > ds->T) ep_die("'%s': cannot draw a clip of %d frames at stride %d from %d-frame videos", ds->path, F, ds->stride, ds->T);
    *video = ds->first + (int)rng_below(r, (uint32_t)ds->picks);
    *start = (int)rng_below(r, (uint32_t)(ds->T - span + 1));
    if (ds->T > span) { /* a frame outside [start, start + span) */
        int k = (int)rng_below(r, (uint32_t)(ds->T - span));
        *ref_frame = k < *start ? k : k + span;
    } else {
        *ref_frame = (int)rng_below(r, (uint32_t)ds->T);
    }
}

void dataset_restrict(Dataset *ds, int first, int n) {
    if (first < 0 || n < 1 || first + n > ds->N) ep_die("'%s': videos %d..%d are not in the file's %d", ds->path, first, first + n - 1, ds->N);
    ds->first = first, ds->picks = n;
}

int dataset_drawn_videos(const Dataset *ds) { return ds->picks; }

void dataset_close(Dataset *ds) {
    if (!ds) return;
    H5Dclose(ds->lat);
    H5Dclose(ds->pose);
    H5Fclose(ds->file);
    free(ds->u8);
    free(ds->path);
    free(ds);
}
