/* Pixel-space dataset -> latent-space dataset through the SD VAE (encode_dataset.h).
 * Two phases: rank 0 alone makes <out>.tmp (the input's root attributes and
 * every dataset but /latents, copied with H5Ocopy, which moves the stored
 * chunks without decoding them; an empty, fully allocated /latents); then
 * every rank reopens it through MPI-IO and writes the latents of its own
 * videos, one collective write per round, so the VAE's work splits over
 * ranks while the copying stays one plain serial pass. */
#include "data/encode_dataset.h"
#include "core/clock.h"
#include "core/die.h"
#include "io/h5util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LATENT_CHUNK_BYTES (1u << 20) /* as import files: a clip read touches few chunks */

typedef struct {
    const char *in;
    int N, T, H, W, f, C; /* C: the VAE's latent channels */
} Job;

/* Dies unless `in` is a pixel-space dataset the VAE can encode. */
static Job check_input(const Vae *v, const char *in) {
    Job j = {.in = in, .f = vae_factor(&v->cfg), .C = v->cfg.latent};
    hid_t fi = h5_open_read(in, MPI_COMM_NULL);
    if (!h5_has_attr(fi, "/", "format_version"))
        ep_die("encode: '%s' lacks the root attribute format_version (not a dataset file of docs/formats.md?)", in);
    if (h5_has_attr(fi, "/", "latent_space")) {
        char *s = h5_get_attr_str(fi, in, "/", "latent_space");
        if (strcmp(s, "pixel")) ep_die("encode: '%s' is already in latent space (latent_space '%s'); encode reads pixel-space datasets", in, s);
        free(s);
    }
    if (!h5_exists(fi, "/frames"))
        ep_die("encode: '%s' has no /frames: encoding a dataset needs the uint8 frames [N,T,3,H,W] that datagen and import-video write", in);
    hsize_t d[5];
    int r = h5_dims(fi, in, "/frames", d, 5);
    hid_t ds = H5Dopen2(fi, "/frames", H5P_DEFAULT), t = H5Dget_type(ds);
    int u8 = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    H5Tclose(t), H5Dclose(ds);
    if (r != 5 || !u8 || (int)d[2] != v->cfg.in_ch)
        ep_die("encode: '%s': /frames must be uint8 [N, T, %d, H, W] (rank %d%s found)", in, v->cfg.in_ch, r, u8 ? "" : ", not uint8,");
    j.N = (int)d[0], j.T = (int)d[1], j.H = (int)d[3], j.W = (int)d[4];
    if (j.N < 1 || j.T < 1) ep_die("encode: '%s' holds no frames (N = %d, T = %d)", in, j.N, j.T);
    if (j.H % j.f || j.W % j.f)
        ep_die("encode: '%s': frames are %dx%d, not multiples of the VAE's factor %d", in, j.H, j.W, j.f);
    h5_close(fi);
    return j;
}

/* ---- phase 1 (rank 0): the file without its latents ---- */

static herr_t copy_attr(hid_t src, const char *name, const H5A_info_t *info, void *dst_p) {
    (void)info;
    hid_t dst = *(hid_t *)dst_p, a = H5Aopen(src, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a), mt = H5Tget_native_type(ft, H5T_DIR_ASCEND), sp = H5Aget_space(a);
    size_t n = (size_t)H5Sget_simple_extent_npoints(sp) * H5Tget_size(mt);
    void *buf = ep_calloc(n ? n : 1, 1, "attribute");
    herr_t ok = H5Aread(a, mt, buf);
    hid_t b = ok < 0 ? -1 : H5Acreate2(dst, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (b >= 0) ok = H5Awrite(b, mt, buf), H5Aclose(b);
    if (ok >= 0 && H5Tdetect_class(mt, H5T_VLEN) > 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf); /* h5py's strings */
    free(buf);
    H5Sclose(sp), H5Tclose(mt), H5Tclose(ft), H5Aclose(a);
    return b < 0 ? -1 : ok;
}

static herr_t copy_link(hid_t src, const char *name, const H5L_info_t *info, void *dst_p) {
    (void)info;
    if (!strcmp(name, "latents")) return 0; /* made anew */
    return H5Ocopy(src, name, *(hid_t *)dst_p, name, H5P_DEFAULT, H5P_DEFAULT);
}

/* /keypoints are in latent pixels, which are f pixels apart now. Row by row. */
static void scale_keypoints(hid_t fo, const char *tmp, const Job *j) {
    if (!h5_exists(fo, "/keypoints")) return;
    hid_t d = H5Dopen2(fo, "/keypoints", H5P_DEFAULT), s = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[8];
    int r = H5Sget_simple_extent_ndims(s);
    if (H5Tget_class(t) != H5T_FLOAT || r < 2 || r > 8) ep_die("encode: '%s': /keypoints is not a float array [N, ...]", j->in);
    H5Sget_simple_extent_dims(s, dims, NULL);
    hsize_t row = 1, off[8] = {0}, cnt[8];
    for (int i = 1; i < r; i++) row *= dims[i];
    memcpy(cnt, dims, sizeof cnt);
    cnt[0] = 1;
    float *buf = ep_malloc(row * sizeof(float), "keypoints row");
    hid_t ms = H5Screate_simple(1, &row, NULL);
    for (hsize_t n = 0; n < dims[0]; n++) {
        off[0] = n;
        H5Sselect_hyperslab(s, H5S_SELECT_SET, off, NULL, cnt, NULL);
        if (H5Dread(d, H5T_NATIVE_FLOAT, ms, s, H5P_DEFAULT, buf) < 0) ep_die("encode: cannot read /keypoints of '%s'", tmp);
        for (hsize_t k = 0; k < row; k++) buf[k] /= (float)j->f;
        if (H5Dwrite(d, H5T_NATIVE_FLOAT, ms, s, H5P_DEFAULT, buf) < 0) ep_die("encode: cannot write /keypoints of '%s' (disk full?)", tmp);
    }
    free(buf);
    H5Sclose(ms), H5Tclose(t), H5Sclose(s), H5Dclose(d);
}

static void make_file(const Vae *v, const char *vae_path, const Job *j, const char *tmp) {
    hid_t fi = h5_open_read(j->in, MPI_COMM_NULL), fo = h5_create(tmp, MPI_COMM_NULL);
    hid_t ri = H5Gopen2(fi, "/", H5P_DEFAULT), ro = H5Gopen2(fo, "/", H5P_DEFAULT);
    if (H5Aiterate2(ri, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_attr, &ro) < 0)
        ep_die("encode: cannot copy the root attributes of '%s' to '%s'", j->in, tmp);
    if (H5Literate(ri, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_link, &ro) < 0)
        ep_die("encode: cannot copy the datasets of '%s' to '%s' (disk full?)", j->in, tmp);
    H5Gclose(ri), H5Gclose(ro);
    h5_close(fi);
    scale_keypoints(fo, tmp, j);
    h5_attr_str(fo, "/", "latent_space", ENCODED_LATENT_SPACE);
    h5_attr_double(fo, "/", "latent_scale", v->cfg.scale);
    h5_attr_double(fo, "/", "latent_shift", v->cfg.shift);
    h5_attr_str(fo, "/", "vae", vae_path);
    h5_attr_int(fo, "/", "vae_factor", j->f);
    if (h5_has_attr(fo, "/", "pose_scale")) /* the pose maps kept their size; the grid under them shrank */
        h5_attr_int(fo, "/", "pose_scale", h5_get_attr_int(fo, tmp, "/", "pose_scale") * j->f);
    int h = j->H / j->f, w = j->W / j->f;
    hsize_t dims[5] = {(hsize_t)j->N, (hsize_t)j->T, (hsize_t)j->C, (hsize_t)h, (hsize_t)w}, chunk[5];
    memcpy(chunk, dims, sizeof chunk);
    hsize_t tc = LATENT_CHUNK_BYTES / ((hsize_t)j->C * h * w * sizeof(float));
    chunk[0] = 1, chunk[1] = tc < 1 ? 1 : tc > dims[1] ? dims[1] : tc;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 5, chunk);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY); /* every chunk exists before the ranks write in parallel */
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    H5Pset_obj_track_times(dcpl, 0);
    hid_t sp = H5Screate_simple(5, dims, NULL);
    hid_t d = H5Dcreate2(fo, "/latents", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) ep_die("encode: cannot create /latents in '%s' (disk full?)", tmp);
    H5Dclose(d), H5Sclose(sp), H5Pclose(dcpl);
    h5_close(fo);
}

/* ---- phase 2 (every rank): the latents ---- */

/* Video `n`'s latents (n < 0: this rank has none this round) into row n, collectively. */
static void write_row(hid_t d, const char *tmp, int n, const float *z, const Job *j, int parallel) {
    hsize_t off[5] = {(hsize_t)(n < 0 ? 0 : n), 0, 0, 0, 0};
    hsize_t cnt[5] = {1, (hsize_t)j->T, (hsize_t)j->C, (hsize_t)(j->H / j->f), (hsize_t)(j->W / j->f)};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(5, cnt, NULL), x = H5Pcreate(H5P_DATASET_XFER);
    if (n < 0) H5Sselect_none(fs), H5Sselect_none(ms);
    else H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (parallel) H5Pset_dxpl_mpio(x, H5FD_MPIO_COLLECTIVE);
    if (H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, x, z) < 0) ep_die("encode: cannot write video %d's latents to '%s' (disk full?)", n, tmp);
    H5Pclose(x), H5Sclose(ms), H5Sclose(fs);
}

static void read_video(hid_t d, const Job *j, int n, uint8_t *px) {
    hsize_t off[5] = {(hsize_t)n, 0, 0, 0, 0}, cnt[5] = {1, (hsize_t)j->T, 3, (hsize_t)j->H, (hsize_t)j->W};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(5, cnt, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (H5Dread(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, px) < 0)
        ep_die("encode: cannot read video %d of /frames in '%s' (corrupt or truncated file?)", n, j->in);
    H5Sclose(ms), H5Sclose(fs);
}

double encode_dataset(const Vae *v, const char *vae_path, const char *in, const char *out, MPI_Comm comm) {
    int rank = 0, R = 1;
    if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &rank), MPI_Comm_size(comm, &R);
    MPI_Comm io = R > 1 ? comm : MPI_COMM_NULL;
    Job j = check_input(v, in);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", out) >= (int)sizeof tmp) ep_die("encode: --out '%s' is too long", out);
    double t0 = clock_s();
    if (rank == 0) make_file(v, vae_path, &j, tmp);
    if (R > 1) MPI_Barrier(comm);
    int partial = rank == 0 ? ep_partial_begin(tmp) : -1; /* a rank dying from here on leaves no .tmp behind on rank 0 */
    hid_t fo = h5_open_rw(tmp, io), fi = h5_open_read(in, MPI_COMM_NULL);
    hid_t dz = H5Dopen2(fo, "/latents", H5P_DEFAULT), dx = H5Dopen2(fi, "/frames", H5P_DEFAULT);
    size_t npx = (size_t)j.T * 3 * j.H * j.W, nz = (size_t)j.T * j.C * (j.H / j.f) * (j.W / j.f);
    uint8_t *px = ep_malloc(npx, "video frames");
    float *x = ep_malloc(npx * sizeof(float), "video images"), *z = ep_malloc(nz * sizeof(float), "video latents");
    int rounds = (j.N + R - 1) / R;
    double t_enc = 0;
    for (int k = 0; k < rounds; k++) {
        int n = k * R + rank;
        if (n < j.N) {
            read_video(dx, &j, n, px);
            for (size_t i = 0; i < npx; i++) x[i] = px[i] / 127.5f - 1.0f; /* as datagen's pixel-space latents */
            double t = clock_s();
            vae_encode(v, x, j.T, j.H, j.W, z);
            t_enc += clock_s() - t;
            if (rank == 0) {
                printf("encode: video %d/%d (%d frames %dx%d), %.3f frames/s on rank 0\n", n + 1, j.N, j.T, j.H, j.W,
                       (k + 1) * j.T / t_enc);
                fflush(stdout);
            }
        }
        write_row(dz, tmp, n < j.N ? n : -1, z, &j, R > 1);
    }
    free(px), free(x), free(z);
    H5Dclose(dx), H5Dclose(dz);
    h5_close(fi);
    errno = 0;
    if (H5Fclose(fo) < 0) ep_die("encode: cannot finish writing '%s': %s", tmp, errno ? strerror(errno) : "disk full or I/O error?");
    if (R > 1) MPI_Barrier(comm);
    double dt = clock_s() - t0;
    if (rank == 0) {
        if (rename(tmp, out) != 0) ep_die("encode: cannot rename '%s' to '%s': %s", tmp, out, strerror(errno));
        ep_partial_done(partial);
    }
    if (R > 1) MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, comm);
    return dt;
}
