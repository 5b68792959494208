/* Dataset generator and loader tests.
 *   test_dataset roundtrip <workdir>   generate a small dataset, read it back through
 *                                      the loader and through plain HDF5, compare
 *   test_dataset open <file> <F> <stride>
 *                                      open <file> for the tiny model shape (C 3, 16x16,
 *                                      Cp 3, s 2), read the first clip and frame, print
 *                                      "ok N T sum(x0) sum(pose) sum(ref)"; used by
 *                                      check_dataset.py for the bad-input cases */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/datagen.h"
#include "data/dataset.h"
#include "deck/deck.h"
#include "core/die.h"
#include "data/figure.h"
#include "io/h5util.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)

static const ModelShape TINY = {.F = 4, .C = 3, .H = 16, .W = 16, .p = 2, .D = 32, .NH = 2, .L = 3,
                                .mlp_ratio = 4, .Cp = 3, .s = 2, .Cg = 8};

static void tiny_deck(Deck *d, const char *dir, int n_train, int T) {
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "(test_dataset)");
    d->model = TINY;
    snprintf(d->data.dir, sizeof d->data.dir, "%s", dir);
    d->data.n_train = n_train;
    d->data.n_val = 1;
    d->data.n_test = 0;
    d->data.frames = T;
    d->data.frame_stride = 1;
    d->data.seed = 42;
    d->data.fps = 8;
}

/* The whole of a dataset through plain HDF5, for comparisons. */
static void *read_all(const char *path, const char *name, hid_t memtype, size_t elem, hsize_t dims[5]) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) ep_die("cannot open %s", path);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    H5Sget_simple_extent_dims(s, dims, NULL);
    size_t n = H5Sget_simple_extent_npoints(s);
    void *buf = ep_malloc(n * elem, "whole dataset");
    if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) ep_die("cannot read %s in %s", name, path);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    return buf;
}

/* Compare a loader clip with frames start, start+stride, ... of the whole arrays. */
static void check_clip(Dataset *ds, const float *lat, const uint8_t *pose, int T, int v, int start, int F, int stride) {
    const ModelShape *m = &TINY;
    size_t fl = (size_t)m->C * m->H * m->W, fp = (size_t)m->Cp * m->s * m->H * m->s * m->W;
    float *x0 = ep_malloc(F * fl * sizeof(float), "clip"), *pm = ep_malloc(F * fp * sizeof(float), "pose clip");
    dataset_read_clip(ds, v, start, F, x0, pm);
    int bad_x = 0, bad_p = 0;
    for (int f = 0; f < F; f++) {
        size_t t = (size_t)v * T + start + (size_t)f * stride;
        for (size_t i = 0; i < fl; i++) bad_x += x0[f * fl + i] != lat[t * fl + i];
        for (size_t i = 0; i < fp; i++) bad_p += pm[f * fp + i] != pose[t * fp + i] / 255.0f;
    }
    CHECK(bad_x == 0, "clip v%d start %d stride %d: %d latent values differ from the whole read", v, start, stride, bad_x);
    CHECK(bad_p == 0, "clip v%d start %d stride %d: %d pose values differ from the whole read", v, start, stride, bad_p);
    free(x0);
    free(pm);
}

static void check_frame(Dataset *ds, const float *lat, int T, int v, int t) {
    size_t fl = (size_t)TINY.C * TINY.H * TINY.W;
    float *ref = ep_malloc(fl * sizeof(float), "ref");
    dataset_read_frame(ds, v, t, ref);
    int bad = 0;
    for (size_t i = 0; i < fl; i++) bad += ref[i] != lat[((size_t)v * T + t) * fl + i];
    CHECK(bad == 0, "frame v%d t%d: %d values differ", v, t, bad);
    free(ref);
}

static void check_pick(Dataset *ds, int F) {
    Rng r;
    rng_seed(&r, 5);
    int T = dataset_frames(ds), span = (F - 1) * dataset_stride(ds) + 1, outside = 0;
    for (int i = 0; i < 2000; i++) {
        int v, s, ref;
        dataset_pick(ds, &r, F, &v, &s, &ref);
        CHECK(v >= 0 && v < dataset_videos(ds), "pick: video %d", v);
        CHECK(s >= 0 && s + span <= T, "pick: start %d span %d T %d", s, span, T);
        CHECK(ref >= 0 && ref < T, "pick: ref %d", ref);
        outside += ref < s || ref >= s + span;
    }
    if (T > span) CHECK(outside == 2000, "pick: %d of 2000 references fell inside the clip span", 2000 - outside);
}

static int roundtrip(const char *work) {
    char dir[512], other[512], path[600], path2[600];
    snprintf(dir, sizeof dir, "%s/ds", work);
    snprintf(other, sizeof other, "%s/ds_more", work);
    const int N = 3, T = 10;
    Deck d;
    tiny_deck(&d, dir, N, T);
    datagen_run(&d);
    snprintf(path, sizeof path, "%s/train.h5", dir);

    hsize_t ld[5], pd[5], fd[5], kd[5];
    float *lat = read_all(path, "/latents", H5T_NATIVE_FLOAT, 4, ld);
    uint8_t *pose = read_all(path, "/pose", H5T_NATIVE_UINT8, 1, pd);
    uint8_t *frames = read_all(path, "/frames", H5T_NATIVE_UINT8, 1, fd);
    float *kp = read_all(path, "/keypoints", H5T_NATIVE_FLOAT, 4, kd);
    CHECK(ld[0] == (hsize_t)N && ld[1] == (hsize_t)T && ld[2] == 3 && ld[3] == 16 && ld[4] == 16, "latent dims");
    CHECK(pd[0] == (hsize_t)N && pd[1] == (hsize_t)T && pd[2] == 3 && pd[3] == 32 && pd[4] == 32, "pose dims");

    /* Latents are the frame bytes mapped to [-1, 1]. */
    size_t nl = (size_t)N * T * 3 * 16 * 16;
    int bad = 0;
    for (size_t i = 0; i < nl; i++) bad += lat[i] != frames[i] / 127.5f - 1.0f;
    CHECK(bad == 0, "%d latents differ from frames/127.5 - 1", bad);

    /* The pose map is lit at every keypoint, scaled by s. */
    int dark = 0;
    for (int v = 0; v < N; v++)
        for (int t = 0; t < T; t++)
            for (int k = 0; k < FIG_NJOINTS; k++) {
                const float *q = kp + (((size_t)v * T + t) * FIG_NJOINTS + k) * 2;
                int x = (int)(q[0] * TINY.s), y = (int)(q[1] * TINY.s);
                if (x < 0 || y < 0 || x >= 32 || y >= 32) continue;
                const uint8_t *p = pose + ((size_t)v * T + t) * 3 * 32 * 32;
                int lit = p[y * 32 + x] + p[1024 + y * 32 + x] + p[2048 + y * 32 + x];
                dark += lit < 128;
            }
    CHECK(dark == 0, "%d keypoints fall on black pose pixels", dark);

    Dataset *ds = dataset_open(path, &TINY, 1);
    CHECK(dataset_videos(ds) == N && dataset_frames(ds) == T, "videos %d frames %d", dataset_videos(ds), dataset_frames(ds));
    check_clip(ds, lat, pose, T, 1, 3, 4, 1);
    check_clip(ds, lat, pose, T, 0, 0, 4, 1);
    check_clip(ds, lat, pose, T, 2, 6, 4, 1);
    check_frame(ds, lat, T, 2, 9);
    check_frame(ds, lat, T, 0, 0);
    check_pick(ds, 4);
    dataset_close(ds);

    /* Frame stride: frames start, start+2, ... */
    ds = dataset_open(path, &TINY, 2);
    check_clip(ds, lat, pose, T, 2, 1, 4, 2);
    check_clip(ds, lat, pose, T, 0, 3, 4, 2);
    check_pick(ds, 4);
    dataset_close(ds);
    ds = dataset_open(path, &TINY, 3); /* span (4-1)*3+1 = 10 = T: the whole video */
    check_clip(ds, lat, pose, T, 1, 0, 4, 3);
    check_pick(ds, 4);
    dataset_close(ds);

    /* A video depends on (seed, split, index) only: more videos leave the first ones alone. */
    tiny_deck(&d, other, N + 2, T);
    datagen_run(&d);
    snprintf(path2, sizeof path2, "%s/train.h5", other);
    hsize_t ld2[5];
    float *lat2 = read_all(path2, "/latents", H5T_NATIVE_FLOAT, 4, ld2);
    CHECK(ld2[0] == (hsize_t)N + 2, "bigger split has %llu videos", (unsigned long long)ld2[0]);
    CHECK(memcmp(lat, lat2, nl * sizeof(float)) == 0, "the first %d videos changed when generating %d", N, N + 2);
    /* And consecutive videos differ. */
    size_t vid = (size_t)T * 3 * 16 * 16;
    CHECK(memcmp(lat, lat + vid, vid * sizeof(float)) != 0, "videos 0 and 1 are identical");

    free(lat);
    free(lat2);
    free(pose);
    free(frames);
    free(kp);
    if (failures) {
        fprintf(stderr, "test_dataset roundtrip: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_dataset roundtrip: ok\n");
    return 0;
}

static int open_probe(const char *path, int F, int stride) {
    ModelShape m = TINY;
    m.F = F;
    Dataset *ds = dataset_open(path, &m, stride);
    size_t fl = (size_t)m.C * m.H * m.W, fp = (size_t)m.Cp * m.s * m.H * m.s * m.W;
    float *x0 = ep_malloc(F * fl * sizeof(float), "clip"), *pm = ep_malloc(F * fp * sizeof(float), "pose");
    float *ref = ep_malloc(fl * sizeof(float), "ref");
    dataset_read_clip(ds, 0, 0, F, x0, pm);
    dataset_read_frame(ds, 0, dataset_frames(ds) - 1, ref);
    double sx = 0, sp = 0, sr = 0;
    for (size_t i = 0; i < F * fl; i++) sx += x0[i];
    for (size_t i = 0; i < F * fp; i++) sp += pm[i];
    for (size_t i = 0; i < fl; i++) sr += ref[i];
    printf("ok %d %d %.6f %.6f %.6f\n", dataset_videos(ds), dataset_frames(ds), sx, sp, sr);
    dataset_close(ds);
    free(x0);
    free(pm);
    free(ref);
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rc = 2;
    if (argc == 3 && !strcmp(argv[1], "roundtrip")) rc = roundtrip(argv[2]);
    else if (argc == 5 && !strcmp(argv[1], "open")) rc = open_probe(argv[2], atoi(argv[3]), atoi(argv[4]));
    else fprintf(stderr, "usage: test_dataset roundtrip <workdir> | open <file> <F> <stride>\n");
    MPI_Finalize();
    return rc;
}
