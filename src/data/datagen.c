/* `entprog datagen`: render the synthetic dancers and write the split files. */
#define _POSIX_C_SOURCE 200809L
#include "data/datagen.h"
#include "core/clock.h"
#include "core/paths.h"
#include "data/backdrop.h"
#include "core/die.h"
#include "data/figure.h"
#include "io/h5util.h"
#include "media/png_write.h"
#include <errno.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const datagen_split_names[SPLIT_COUNT] = {"train", "val", "test"};

#define DATAGEN_FORMAT_VERSION 1
#define KEYPOINT_ORDER "nose,neck,r_shoulder,r_elbow,r_wrist,l_shoulder,l_elbow,l_wrist," \
                       "r_hip,r_knee,r_ankle,l_hip,l_knee,l_ankle"

void datagen_video_rng(Rng *r, uint64_t seed, int split, int index) {
    Rng split_rng;
    rng_seed_stream(&split_rng, seed, 0xDA7A5EED00ull + (uint64_t)split);
    rng_seed_stream(r, rng_next(&split_rng), (uint64_t)index);
}

static void canvas_to_bytes(const Canvas *c, uint8_t *out) {
    long n = 3L * c->w * c->h;
    for (long i = 0; i < n; i++) out[i] = to_byte(c->px[i]);
}

void datagen_render_video(const ModelShape *m, int T, uint64_t seed, int split, int index,
                          uint8_t *frames, uint8_t *pose, float *keypoints) {
    int H = m->H, W = m->W, sH = m->s * H, sW = m->s * W;
    Rng r;
    datagen_video_rng(&r, seed, split, index);
    /* The backdrop first: the clothes are then chosen to stand out from it. */
    float ground = H * (0.9f + 0.06f * rng_uniform(&r));
    Backdrop bg;
    backdrop_sample(&bg, &r, W, H, ground);
    Canvas wall, frame, map;
    canvas_init(&wall, W, H);
    canvas_init(&frame, W, H);
    canvas_init(&map, sW, sH);
    backdrop_draw(&bg, &wall);
    float mean[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < W * H; i++) mean[k] += wall.px[k * W * H + i];
        mean[k] /= W * H;
    }
    Figure fig;
    figure_sample(&fig, &r, W, H, ground, mean);
    const float black[3] = {0, 0, 0};
    for (int t = 0; t < T; t++) {
        FigurePose p;
        figure_pose(&fig, (float)t, &p);
        memcpy(frame.px, wall.px, sizeof(float) * 3 * W * H);
        figure_draw(&fig, &p, &frame);
        canvas_to_bytes(&frame, frames + (size_t)t * 3 * H * W);
        canvas_clear(&map, black);
        skeleton_draw(&p, (float)m->s, &map);
        canvas_to_bytes(&map, pose + (size_t)t * 3 * sH * sW);
        if (keypoints)
            for (int k = 0; k < FIG_NJOINTS; k++) {
                keypoints[((size_t)t * FIG_NJOINTS + k) * 2 + 0] = p.j[k].x;
                keypoints[((size_t)t * FIG_NJOINTS + k) * 2 + 1] = p.j[k].y;
            }
    }
    canvas_free(&wall);
    canvas_free(&frame);
    canvas_free(&map);
}

/* ---- HDF5 writing ---- */

/* A [N, T, ...] dataset chunked as [1, tc, ...] with chunks of about 1 MiB at
 * most, so a loader reading a clip touches few chunks and the default chunk
 * cache holds one. No timestamps, so equal seeds give equal bytes. */
static hid_t create_video_dset(hid_t f, const char *file, const char *name, hid_t type,
                               int rank, const hsize_t *dims, int compress) {
    hsize_t chunk[8], frame_bytes = H5Tget_size(type);
    for (int i = 2; i < rank; i++) frame_bytes *= dims[i];
    hsize_t tc = (1u << 20) / frame_bytes;
    if (tc < 1) tc = 1;
    if (tc > dims[1]) tc = dims[1];
    chunk[0] = 1;
    chunk[1] = tc;
    for (int i = 2; i < rank; i++) chunk[i] = dims[i];
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_obj_track_times(dcpl, 0);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    if (compress && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) H5Pset_deflate(dcpl, 1);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) ep_die("'%s': cannot create dataset %s", file, name);
    H5Sclose(space);
    H5Pclose(dcpl);
    return d;
}

static void write_video(hid_t d, const char *file, const char *name, hid_t memtype, int v, const void *buf) {
    hsize_t dims[8], start[8] = {0}, count[8];
    hid_t fs = H5Dget_space(d);
    int rank = H5Sget_simple_extent_dims(fs, dims, NULL);
    for (int i = 0; i < rank; i++) count[i] = dims[i];
    start[0] = (hsize_t)v;
    count[0] = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    if (H5Dwrite(d, memtype, ms, fs, H5P_DEFAULT, buf) < 0) ep_die("'%s': cannot write video %d of %s (disk full?)", file, v, name);
    H5Sclose(ms);
    H5Sclose(fs);
}

static void attr_u64(hid_t f, const char *name, uint64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_UINT64, &v) < 0) ep_die("cannot write attribute %s", name);
    H5Aclose(a);
    H5Sclose(sp);
}

static double deck_fps(const Deck *d) { return d->data.fps > 0 ? d->data.fps : 8.0; }

static void write_split(const Deck *d, int split, int N, const char *dir) {
    const ModelShape *m = &d->model;
    int T = d->data.frames, H = m->H, W = m->W, s = m->s;
    char path[DECK_PATH_MAX + 32], tmp[DECK_PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/%s.h5", dir, datagen_split_names[split]);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    double t0 = clock_s(), last = t0;

    /* Written under a temporary name and renamed at the end, so a crash never
     * leaves a half-written split that looks complete. */
    hid_t f = h5_create(tmp, MPI_COMM_NULL);
    hsize_t lat_dims[5] = {N, T, m->C, H, W}, pose_dims[5] = {N, T, m->Cp, s * H, s * W};
    hsize_t frm_dims[5] = {N, T, 3, H, W}, kp_dims[4] = {N, T, FIG_NJOINTS, 2};
    hid_t dl = create_video_dset(f, tmp, "/latents", H5T_IEEE_F32LE, 5, lat_dims, 0);
    hid_t dp = create_video_dset(f, tmp, "/pose", H5T_STD_U8LE, 5, pose_dims, 1);
    hid_t df = create_video_dset(f, tmp, "/frames", H5T_STD_U8LE, 5, frm_dims, 1);
    hid_t dk = create_video_dset(f, tmp, "/keypoints", H5T_IEEE_F32LE, 4, kp_dims, 0);

    size_t nf = (size_t)T * 3 * H * W, np = (size_t)T * 3 * s * H * s * W;
    uint8_t *frames = ep_malloc(nf, "datagen frames");
    uint8_t *pose = ep_malloc(np, "datagen pose maps");
    float *lat = ep_malloc(nf * sizeof(float), "datagen latents");
    float *kp = ep_malloc((size_t)T * FIG_NJOINTS * 2 * sizeof(float), "datagen keypoints");
    for (int v = 0; v < N; v++) {
        datagen_render_video(m, T, d->data.seed, split, v, frames, pose, kp);
        /* Latents are exactly the stored bytes mapped to [-1, 1]. */
        for (size_t i = 0; i < nf; i++) lat[i] = frames[i] / 127.5f - 1.0f;
        write_video(dl, tmp, "/latents", H5T_NATIVE_FLOAT, v, lat);
        write_video(dp, tmp, "/pose", H5T_NATIVE_UINT8, v, pose);
        write_video(df, tmp, "/frames", H5T_NATIVE_UINT8, v, frames);
        write_video(dk, tmp, "/keypoints", H5T_NATIVE_FLOAT, v, kp);
        double t = clock_s();
        if (t - last > 5.0 && v + 1 < N) {
            printf("datagen: %s: %d/%d videos (%.1f s)\n", datagen_split_names[split], v + 1, N, t - t0);
            fflush(stdout);
            last = t;
        }
    }
    free(frames);
    free(pose);
    free(lat);
    free(kp);
    H5Dclose(dl);
    H5Dclose(dp);
    H5Dclose(df);
    H5Dclose(dk);

    h5_attr_int(f, "/", "format_version", DATAGEN_FORMAT_VERSION);
    h5_attr_str(f, "/", "latent_space", "pixel");
    h5_attr_double(f, "/", "latent_scale", 1.0);
    h5_attr_double(f, "/", "fps", deck_fps(d));
    h5_attr_str(f, "/", "split", datagen_split_names[split]);
    attr_u64(f, "seed", d->data.seed);
    h5_attr_int(f, "/", "pose_scale", s);
    h5_attr_str(f, "/", "generator", "entprog datagen: articulated dancer v1");
    h5_attr_str(f, "/", "keypoint_order", KEYPOINT_ORDER);
    h5_close(f);
    if (rename(tmp, path) != 0) ep_die("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    printf("datagen: %s: %d videos x %d frames, %dx%d latents, %dx%d pose maps -> %s (%.2f s)\n",
           datagen_split_names[split], N, T, H, W, s * H, s * W, path, clock_s() - t0);
    fflush(stdout);
}

/* mkdir -p, then make sure it is a folder */
static void make_dirs(const char *dir) {
    path_mkdirs(dir, "data.dir");
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) ep_die("data.dir '%s' is not a folder", dir);
}

static void check_deck(const Deck *d) {
    const ModelShape *m = &d->model;
    const char *bad = shape_check(m, 1);
    if (bad) ep_die("%s: %s", d->path, bad);
    if (m->C != 3) ep_die("%s: model.C = %d: datagen writes pixel-space latents, which need C = 3", d->path, m->C);
    if (m->Cp != 3) ep_die("%s: model.Cp = %d: datagen draws RGB pose maps, which need Cp = 3", d->path, m->Cp);
    if (m->H < 8 || m->W < 8) ep_die("%s: model.H x W = %dx%d: datagen needs at least 8x8 frames", d->path, m->H, m->W);
    if (d->data.frames < 1) ep_die("%s: data.frames = %d: must be >= 1", d->path, d->data.frames);
    if (d->data.n_train < 1) ep_die("%s: data.n_train = %d: must be >= 1", d->path, d->data.n_train);
    if (d->data.n_val < 0 || d->data.n_test < 0) ep_die("%s: data.n_val / n_test must be >= 0", d->path);
    if (!d->data.dir[0]) ep_die("%s: data.dir is empty", d->path);
}

void datagen_run(const Deck *d) {
    int up = 0, rank = 0;
    MPI_Initialized(&up);
    if (up) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
        check_deck(d);
        make_dirs(d->data.dir);
        const int counts[SPLIT_COUNT] = {d->data.n_train, d->data.n_val, d->data.n_test};
        for (int s = 0; s < SPLIT_COUNT; s++) {
            if (counts[s] > 0) write_split(d, s, counts[s], d->data.dir);
            else printf("datagen: %s: 0 videos, no file written\n", datagen_split_names[s]);
        }
        char png[DECK_PATH_MAX + 32];
        snprintf(png, sizeof png, "%s/preview.png", d->data.dir);
        datagen_preview(&d->model, d->data.frames, d->data.seed, d->data.n_train < 2 ? d->data.n_train : 2, png);
        printf("datagen: preview -> %s\n", png);
        fflush(stdout);
    }
    if (up) MPI_Barrier(MPI_COMM_WORLD);
}
