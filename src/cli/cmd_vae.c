/* entprog encode / entprog decode: images <-> latents through the SD VAE
 * (model/vae.h, docs/vae.md), CPU only, fp32.
 *   encode --vae VAE.safetensors --in IMAGES.h5 --out LATENTS.h5 [--dataset images]
 *       [N, 3, H, W] floats in [-1, 1] -> /latents [N, 4, H/8, W/8], the
 *       posterior's mean times the scaling factor (what a latent model trains on)
 *   decode --vae VAE.safetensors --in LATENTS.h5 --out IMAGES.h5 [--dataset latents]
 *       the reverse, -> /images [N, 3, 8h, 8w], not clamped
 * The output's root attributes name the VAE and its scaling factor.
 *   encode --vae VAE.safetensors --dataset-in DATASET.h5|DIR --out OUT.h5|DIR
 *       a pixel-space dataset file of docs/formats.md (or each of a folder's
 *       train/val/test.h5) -> the same in latent space (data/encode_dataset.h);
 *       with mpirun -n R the ranks split the videos and write one file. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/infer_model.h"
#include "core/clock.h"
#include "core/die.h"
#include "core/paths.h"
#include "data/encode_dataset.h"
#include "io/h5util.h"
#include "io/vae_load.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const SPLITS[] = {"train.h5", "val.h5", "test.h5"};

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --dataset-in: one dataset file, or every split file of a folder. */
static int encode_datasets(const char *vae_path, const char *in, const char *out) {
    int rank = 0, R = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &R);
    infer_check_readable("encode", "--vae", vae_path);
    char src[3][4096], dst[3][4096];
    int n = 0;
    if (is_dir(in)) {
        for (int i = 0; i < 3; i++) {
            path_join(src[n], sizeof src[n], in, SPLITS[i]);
            path_join(dst[n], sizeof dst[n], out, SPLITS[i]);
            FILE *f = fopen(src[n], "rb");
            if (f) fclose(f), n++;
        }
        if (!n) ep_die("encode: --dataset-in folder '%s' holds none of train.h5, val.h5, test.h5", in);
        if (rank == 0) path_mkdirs(out, "--out");
        if (R > 1) MPI_Barrier(MPI_COMM_WORLD);
    } else {
        infer_check_readable("encode", "--dataset-in", in);
        snprintf(src[0], sizeof src[0], "%s", in);
        snprintf(dst[0], sizeof dst[0], "%s", out);
        n = 1;
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(src[i], dst[i])) ep_die("encode: --out '%s' is the input itself", dst[i]);
    Vae *v = ep_calloc(1, sizeof *v, "VAE");
    vae_load(v, vae_path);
    for (int i = 0; i < n; i++) {
        double dt = encode_dataset(v, vae_path, src[i], dst[i], MPI_COMM_WORLD);
        if (rank == 0) {
            hid_t f = h5_open_read(dst[i], MPI_COMM_NULL);
            hsize_t d[5], p[5];
            h5_dims(f, dst[i], "/latents", d, 5);
            int has_pose = h5_exists(f, "/pose");
            if (has_pose) h5_dims(f, dst[i], "/pose", p, 5);
            h5_close(f);
            double frames = (double)d[0] * d[1];
            printf("encode: %s -> %s: /latents [%llu, %llu, %llu, %llu, %llu] in %.2f s (%.3f frames/s, %d rank(s), CPU fp32)\n",
                   src[i], dst[i], (unsigned long long)d[0], (unsigned long long)d[1], (unsigned long long)d[2],
                   (unsigned long long)d[3], (unsigned long long)d[4], dt, frames / dt, R);
            if (has_pose)
                printf("encode: a deck for it: model.C = %llu, H = %llu, W = %llu, s = %llu (pose maps kept at %llux%llu)\n",
                       (unsigned long long)d[2], (unsigned long long)d[3], (unsigned long long)d[4],
                       (unsigned long long)(p[3] / d[3]), (unsigned long long)p[3], (unsigned long long)p[4]);
        }
    }
    vae_free(v);
    free(v);
    return 0;
}

static int vae_command(int argc, char **argv, int enc) {
    const char *cmd = enc ? "encode" : "decode", *vae_path = NULL, *in = NULL, *out = NULL, *data_in = NULL;
    const char *dset = enc ? "images" : "latents", *out_dset = enc ? "latents" : "images";
    const ArgOpt opts[] = {
        {"--vae", ARG_STR, &vae_path, .required = 1, .what = "diffusers AutoencoderKL safetensors (config.json beside it)"},
        {"--in", ARG_STR, &in, .required = !enc, .what = enc ? "HDF5 with [N,C,H,W] images in [-1,1]" : "HDF5 with [N,C,h,w] latents"},
        {"--out", ARG_STR, &out, .required = 1, .what = enc ? "HDF5 to write /latents to" : "HDF5 to write /images to"},
        {"--dataset", ARG_STR, &dset, .what = enc ? "the input dataset (default images)" : "the input dataset (default latents)"},
        {"--dataset-in", ARG_STR, &data_in, .what = "a pixel-space dataset file (docs/formats.md) or a folder of train/val/test.h5"},
    };
    /* decode has no --dataset-in: its table stops before it */
    ArgSpec spec = {cmd, NULL, opts, sizeof opts / sizeof *opts - !enc, NULL};
    if (!args_parse(&spec, argc, argv)) return 0;
    if (enc && !in == !data_in) ep_die("encode: give either --in (an array of images) or --dataset-in (a dataset), not %s",
                                       in ? "both" : "neither");
    if (data_in) return encode_datasets(vae_path, data_in, out);
    infer_check_readable(cmd, "--vae", vae_path);
    infer_check_readable(cmd, "--in", in);

    Vae *v = ep_calloc(1, sizeof *v, "VAE");
    vae_load(v, vae_path);
    const VaeConfig *c = &v->cfg;
    int f = vae_factor(c);

    hid_t fi = h5_open_read(in, MPI_COMM_NULL);
    hsize_t d[4];
    int rank = h5_dims(fi, in, dset, d, 4);
    int want_c = enc ? c->in_ch : c->latent;
    if (rank != 4 || (int)d[1] != want_c)
        ep_die("%s: '%s': /%s must be [N, %d, H, W] (%d dimensions found)", cmd, in, dset, want_c, rank);
    if (enc && (d[2] % f || d[3] % f))
        ep_die("%s: '%s': /%s is %llux%llu, not a multiple of the VAE's factor %d", cmd, in, dset,
               (unsigned long long)d[2], (unsigned long long)d[3], f);
    int N = (int)d[0], H = (int)d[2], W = (int)d[3];
    if (N < 1 || H < 1 || W < 1) ep_die("%s: '%s': /%s is empty", cmd, in, dset);
    float *x = ep_malloc((size_t)N * d[1] * H * W * sizeof(float), "input");
    h5_read_f32(fi, in, dset, x, 4, d);
    h5_close(fi);

    hsize_t od[4] = {(hsize_t)N, (hsize_t)(enc ? c->latent : c->out_ch), (hsize_t)(enc ? H / f : H * f),
                     (hsize_t)(enc ? W / f : W * f)};
    float *y = ep_malloc((size_t)od[0] * od[1] * od[2] * od[3] * sizeof(float), "output");
    double t0 = clock_s();
    if (enc) vae_encode(v, x, N, H, W, y);
    else vae_decode(v, x, N, H, W, y);
    double dt = clock_s() - t0;

    hid_t fo = h5_create(out, MPI_COMM_NULL);
    h5_write_f32(fo, out_dset, y, 4, od, 0);
    h5_attr_str(fo, "/", "vae", vae_path);
    h5_attr_double(fo, "/", "scaling_factor", c->scale);
    h5_attr_double(fo, "/", "shift_factor", c->shift);
    h5_close(fo);
    printf("%s: %d frames %dx%d -> [%d, %d, %d, %d] in %.2f s (%.3f frames/s, CPU fp32) -> %s\n", cmd, N, H, W,
           (int)od[0], (int)od[1], (int)od[2], (int)od[3], dt, N / dt, out);
    free(x), free(y);
    vae_free(v);
    free(v);
    return 0;
}

int cmd_encode(int argc, char **argv) { return vae_command(argc, argv, 1); }
int cmd_decode(int argc, char **argv) { return vae_command(argc, argv, 0); }
