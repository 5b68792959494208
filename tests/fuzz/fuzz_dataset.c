/* libFuzzer target: the dataset loader (src/data/dataset.c). Each input
 * takes a valid tiny dataset file and mutates its structure (datasets
 * deleted or replaced by others of any rank, shape - huge ones too - or
 * type, non-finite values, root attributes dropped or retyped), then opens
 * it and reads a clip, a frame and a pick as training does. Every input
 * must be read or refused with one clear error. */
#include "core/die.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "fuzz_common.h"
#include <mpi.h>
#include <stdlib.h>

static const ModelShape SHAPE = {.F = 2, .C = 3, .H = 4, .W = 4, .p = 2, .D = 8, .NH = 2, .L = 1, .mlp_ratio = 2,
                                 .Cp = 3, .s = 2, .Cg = 4};
static char base[64], path[64];

/* A valid file: N = 2 videos of T = 3 frames. */
static void write_base(void) {
    hid_t f = H5Fcreate(base, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t l[5] = {2, 3, 3, 4, 4}, p[5] = {2, 3, 3, 8, 8};
    float lat[2 * 3 * 3 * 4 * 4];
    uint8_t pose[2 * 3 * 3 * 8 * 8];
    for (size_t i = 0; i < sizeof lat / sizeof *lat; i++) lat[i] = (float)(i % 7) / 7.0f - 0.5f;
    memset(pose, 9, sizeof pose);
    hid_t s = H5Screate_simple(5, l, NULL);
    hid_t d = H5Dcreate2(f, "/latents", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, lat);
    H5Dclose(d), H5Sclose(s);
    s = H5Screate_simple(5, p, NULL);
    d = H5Dcreate2(f, "/pose", H5T_STD_U8LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, pose);
    H5Dclose(d), H5Sclose(s);
    s = H5Screate(H5S_SCALAR);
    long long v = 1;
    hid_t a = H5Acreate2(f, "format_version", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a), H5Sclose(s);
    H5Fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    MPI_Init(argc, argv);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(base, sizeof base, "/tmp/fuzz_dataset_base_%d.h5", (int)getpid());
    snprintf(path, sizeof path, "/tmp/fuzz_dataset_%d.h5", (int)getpid());
    write_base();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Bytes b = {data, size, 0};
    copy_file(base, path);
    static const char *const dsets[] = {"/latents", "/pose", "/frames"};
    static const char *const attrs[] = {"/@format_version"};
    mutate_file(path, dsets, 3, attrs, 1, &b);
    int stride = 1 + (int)pick(&b, 3);
    jmp_buf jump;
    static Dataset *ds;
    ds = NULL;
    if (!setjmp(jump)) {
        ep_die_jump(&jump);
        ds = dataset_open(path, &SHAPE, stride);
        static float x0[2 * 3 * 4 * 4 * 64], pose[2 * 3 * 8 * 8 * 64], ref[3 * 4 * 4 * 64];
        Rng r;
        rng_seed_stream(&r, 1, 1);
        int video, start, frame;
        dataset_pick(ds, &r, SHAPE.F, &video, &start, &frame);
        dataset_read_clip(ds, video, start, SHAPE.F, x0, pose);
        dataset_read_frame(ds, video, frame, ref);
    }
    ep_die_jump(NULL);
    if (ds) dataset_close(ds);
    h5_close_all();
    return 0;
}
