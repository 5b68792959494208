/* Checkpoints: bit-exact round trip (tensors, state, RNG, config), checksum
 * and shape refusals, bare weights files, failed saves and stale .tmp files.
 *
 * Usage: test_checkpoint <work dir> [--collective]
 * Without --collective it first runs the serial checks, forking a child for
 * each case that must die; this happens before MPI_Init (a forked child of an
 * MPI process must not use MPI, and ep_die would MPI_Abort the whole job).
 * Then, and alone with --collective (under mpirun), it runs the collective
 * save/load on MPI_COMM_WORLD through the MPI-IO driver. */
#include "io/checkpoint.h"
#include "core/die.h"
#include "io/h5util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures = 0;
static int rank = 0;

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "FAIL [rank %d] %s:%d: %s\n", rank, __FILE__, __LINE__, #cond); failures++; } } while (0)

static const char *DECK_TEXT =
    "# a deck with a comment, unicode (\xc3\xa9) and no final newline\n[train]\nsteps = 20\n[model]\nD = 32";

/* ------------------------------------------------------------------------- */
/* a model's worth of buffers */

typedef struct {
    ModelShape shape;
    ParamTable pt;
    float *params, *m, *v, *ema;
    CkptState st;
} Model;

static ModelShape tiny_shape(void) {
    return (ModelShape){.F = 4, .C = 3, .H = 16, .W = 16, .p = 2, .D = 32, .NH = 2, .L = 3,
                        .mlp_ratio = 4, .Cp = 3, .s = 2, .Cg = 8, .frame_embed = "input"};
}

static void model_new(Model *M, ModelShape shape) {
    memset(M, 0, sizeof *M);
    M->shape = shape;
    param_table_build(&M->pt, &shape);
    size_t n = M->pt.total;
    M->params = ep_calloc(n, sizeof(float), "params");
    M->m = ep_calloc(n, sizeof(float), "m");
    M->v = ep_calloc(n, sizeof(float), "v");
    M->ema = ep_calloc(n, sizeof(float), "ema");
    M->st = (CkptState){.pt = &M->pt, .shape = shape, .params = M->params, .m = M->m, .v = M->v, .ema = M->ema};
}

/* Random bits everywhere, including odd floats (denormals, -0): a bit-exact
 * round trip must keep them. Not NaN or Inf: a loader refuses those
 * (docs/reliability.md; tests/check_reliability.py). */
static void model_fill(Model *M, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    float *bufs[4] = {M->params, M->m, M->v, M->ema};
    for (int b = 0; b < 4; b++)
        for (size_t i = 0; i < M->pt.total; i++) {
            uint32_t bits = (uint32_t)rng_next(&r);
            if (((bits >> 23) & 0xff) == 0xff) bits &= ~(1u << 30); /* a NaN or Inf: made finite */
            memcpy(&bufs[b][i], &bits, 4);
        }
    M->st.step = 1234 + (long long)seed;
    M->st.samples_seen = 5678901234LL;
    M->st.n_rng = 3;
    for (int k = 0; k < CKPT_MAX_RNG; k++) rng_seed_stream(&M->st.rng[k], seed, (uint64_t)k);
    M->st.deck_text = DECK_TEXT;
}

static void model_free(Model *M) {
    free(M->params);
    free(M->m);
    free(M->v);
    free(M->ema);
    param_table_free(&M->pt);
}

static int same_buf(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static void check_same(const Model *a, const Model *b, int with_opt) {
    size_t n = a->pt.total;
    CHECK(same_buf(a->params, b->params, n));
    if (with_opt) {
        CHECK(same_buf(a->m, b->m, n));
        CHECK(same_buf(a->v, b->v, n));
        CHECK(same_buf(a->ema, b->ema, n));
        CHECK(a->st.step == b->st.step && a->st.samples_seen == b->st.samples_seen);
        CHECK(a->st.n_rng == b->st.n_rng);
        CHECK(memcmp(a->st.rng, b->st.rng, sizeof(Rng) * (size_t)a->st.n_rng) == 0);
    }
}

/* ------------------------------------------------------------------------- */
/* files */

static void mkdir_p(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(buf, 0755); *p = '/'; }
    mkdir(buf, 0755);
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(2); }
    fputs(text, f);
    fclose(f);
}

/* A weights file as h5py would write it from a state dict: /model/<name> and
 * the root hyper-parameters (no F, no state, no checksum). */
enum { BARE_OK, BARE_EXTRA, BARE_MISSING, BARE_WRONG_SHAPE };

static void write_bare(const char *path, const Model *M, int variant) {
    hid_t f = h5_create(path, MPI_COMM_NULL);
    for (int i = 0; i < M->pt.n; i++) {
        const ParamInfo *p = &M->pt.info[i];
        if (variant == BARE_MISSING && i == M->pt.f_lin_b) continue;
        char name[256];
        hsize_t dims[4];
        int ndim = p->ndim;
        for (int k = 0; k < ndim; k++) dims[k] = (hsize_t)p->shape[k];
        if (variant == BARE_WRONG_SHAPE && i == M->pt.x_w) { dims[0] = p->shape[1], dims[1] = p->shape[0]; }
        snprintf(name, sizeof name, "/model/%s", p->name);
        h5_write_f32(f, name, M->params + p->offset, ndim, dims, 0);
    }
    if (variant == BARE_EXTRA) {
        hsize_t one = 1;
        h5_write_f32(f, "/model/blocks.9.extra.weight", M->params, 1, &one, 0);
    }
    const ModelShape *s = &M->shape;
    const char *names[] = {"C", "H", "W", "p", "D", "NH", "L", "mlp_ratio", "Cp", "s", "Cg"};
    int vals[] = {s->C, s->H, s->W, s->p, s->D, s->NH, s->L, s->mlp_ratio, s->Cp, s->s, s->Cg};
    for (int k = 0; k < 11; k++) h5_attr_int(f, "/", names[k], vals[k]);
    h5_close(f);
}

/* Flips the bits of one element of a stored tensor. */
static void corrupt(const char *path, const char *dset, size_t index) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    size_t n = (size_t)H5Sget_simple_extent_npoints(sp);
    float *x = malloc(n * sizeof(float));
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    uint32_t bits;
    memcpy(&bits, &x[index], 4);
    bits ^= 0x00010000u;
    memcpy(&x[index], &bits, 4);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    free(x);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
}

static void delete_root_attr(const char *path, const char *name) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(f, name);
    H5Fclose(f);
}

/* ------------------------------------------------------------------------- */
/* cases that must die, each in a forked child */

#include "expect_death.h"

typedef struct { const char *path; ModelShape shape; } LoadCase;

static void load_case(const void *arg) {
    const LoadCase *c = arg;
    Model M;
    model_new(&M, c->shape);
    ckpt_load(c->path, &M.st, MPI_COMM_NULL);
}

static void read_shape_case(const void *arg) {
    ModelShape s;
    ckpt_read_shape(arg, &s);
}

static void save_case(const void *arg) {
    Model M;
    model_new(&M, tiny_shape());
    model_fill(&M, 99);
    ckpt_save(arg, &M.st, MPI_COMM_NULL);
}

static void expect_load_death(const char *what, const char *path, ModelShape shape, const char *want) {
    LoadCase c = {path, shape};
    expect_death(what, load_case, &c, want);
}

/* ------------------------------------------------------------------------- */
/* serial checks (no MPI) */

static void roundtrip(const char *path, MPI_Comm comm) {
    Model a, b;
    model_new(&a, tiny_shape());
    model_fill(&a, 7);
    ckpt_save(path, &a.st, comm);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(file_exists(path) && !file_exists(tmp));

    model_new(&b, tiny_shape());
    int flags = ckpt_load(path, &b.st, comm);
    CHECK(flags == (CKPT_HAS_OPT | CKPT_HAS_EMA | CKPT_HAS_STATE));
    check_same(&a, &b, 1);
    char *cfg = ckpt_read_config(path);
    CHECK(cfg && !strcmp(cfg, DECK_TEXT));
    free(cfg);
    ModelShape s;
    ckpt_read_shape(path, &s);
    ModelShape want = tiny_shape();
    CHECK(!memcmp(&s, &want, sizeof s));

    /* F only sizes activations: an image-mode model loads video weights */
    Model c;
    ModelShape img = tiny_shape();
    img.F = 1;
    model_new(&c, img);
    ckpt_load(path, &c.st, comm);
    check_same(&a, &c, 1);
    model_free(&a);
    model_free(&b);
    model_free(&c);
}

/* Saving without optimizer or EMA: the loader reports it and leaves buffers alone. */
static void weights_only_state(const char *path) {
    Model a, b;
    model_new(&a, tiny_shape());
    model_fill(&a, 8);
    a.st.m = a.st.v = a.st.ema = NULL;
    a.st.deck_text = NULL;
    a.st.n_rng = 0;
    ckpt_save(path, &a.st, MPI_COMM_NULL);
    model_new(&b, tiny_shape());
    memset(b.m, 0x5a, b.pt.total * sizeof(float));
    int flags = ckpt_load(path, &b.st, MPI_COMM_NULL);
    CHECK(flags == CKPT_HAS_STATE);
    CHECK(same_buf(a.params, b.params, a.pt.total));
    CHECK(b.st.n_rng == 0 && b.st.step == a.st.step);
    CHECK(((unsigned char *)b.m)[0] == 0x5a);
    CHECK(ckpt_read_config(path) == NULL);
    model_free(&a);
    model_free(&b);
    printf("ok   weights-only state\n");
}

static void bare_files(const char *dir) {
    char path[1100];
    Model a, b;
    model_new(&a, tiny_shape());
    model_fill(&a, 11);
    snprintf(path, sizeof path, "%s/bare.h5", dir);
    write_bare(path, &a, BARE_OK);
    model_new(&b, tiny_shape());
    memset(b.m, 0x5a, b.pt.total * sizeof(float));
    int flags = ckpt_load(path, &b.st, MPI_COMM_NULL);
    CHECK(flags == CKPT_BARE);
    CHECK(same_buf(a.params, b.params, a.pt.total));
    CHECK(((unsigned char *)b.m)[7] == 0x5a); /* untouched */
    ModelShape s;
    ckpt_read_shape(path, &s);
    CHECK(s.F == 0 && s.D == 32 && s.Cg == 8);
    CHECK(ckpt_read_config(path) == NULL);
    printf("ok   bare weights file\n");

    snprintf(path, sizeof path, "%s/bare_extra.h5", dir);
    write_bare(path, &a, BARE_EXTRA);
    expect_load_death("bare extra tensor", path, tiny_shape(), "blocks.9.extra.weight");
    snprintf(path, sizeof path, "%s/bare_missing.h5", dir);
    write_bare(path, &a, BARE_MISSING);
    expect_load_death("bare missing tensor", path, tiny_shape(), "final.linear.bias");
    snprintf(path, sizeof path, "%s/bare_shape.h5", dir);
    write_bare(path, &a, BARE_WRONG_SHAPE);
    expect_load_death("bare wrong shape", path, tiny_shape(), "x_embed.proj.weight has shape [3,32,2,2], expected [32,3,2,2]");
    model_free(&a);
    model_free(&b);
}

static void refusals(const char *dir) {
    char path[1100];
    Model a;
    model_new(&a, tiny_shape());
    model_fill(&a, 5);

    snprintf(path, sizeof path, "%s/flip_model.h5", dir);
    ckpt_save(path, &a.st, MPI_COMM_NULL);
    corrupt(path, "/model/blocks.0.ada.weight", 17);
    expect_load_death("flipped model byte", path, tiny_shape(), "failed its checksum (corrupt?)");

    snprintf(path, sizeof path, "%s/flip_v.h5", dir);
    ckpt_save(path, &a.st, MPI_COMM_NULL);
    corrupt(path, "/optimizer/v/final.linear.weight", 0);
    expect_load_death("flipped moment byte", path, tiny_shape(), "failed its checksum (corrupt?)");

    snprintf(path, sizeof path, "%s/no_sum.h5", dir);
    ckpt_save(path, &a.st, MPI_COMM_NULL);
    delete_root_attr(path, "checksum");
    expect_load_death("checksum missing", path, tiny_shape(), "no checksum");

    snprintf(path, sizeof path, "%s/shape.h5", dir);
    ckpt_save(path, &a.st, MPI_COMM_NULL);
    ModelShape wide = tiny_shape();
    wide.D = 48;
    expect_load_death("shape mismatch D", path, wide, "has D = 32 but the model has D = 48");
    ModelShape deep = tiny_shape();
    deep.L = 4;
    expect_load_death("shape mismatch L", path, deep, "L = 3");

    snprintf(path, sizeof path, "%s/no_such.h5", dir);
    expect_death("missing file", read_shape_case, path, "no_such.h5");
    snprintf(path, sizeof path, "%s/not_hdf5.h5", dir);
    write_text(path, "just text\n");
    expect_death("not HDF5", read_shape_case, path, "not an HDF5 file");
    snprintf(path, sizeof path, "%s/no_attrs.h5", dir);
    h5_close(h5_create(path, MPI_COMM_NULL));
    expect_death("no attributes", read_shape_case, path, "lacks the root attribute 'C'");
    model_free(&a);
}

/* A save that cannot write must die and leave the existing file as it was.
 * Root ignores folder permissions, so a directory squatting on <path>.tmp
 * stands in for an unwritable folder; chmod is tried too when not root. */
static void failed_save(const char *dir) {
    char sub[1100], path[1200], tmp[1300];
    snprintf(sub, sizeof sub, "%s/locked", dir);
    mkdir_p(sub);
    snprintf(path, sizeof path, "%s/ckpt.h5", sub);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    Model a, b;
    model_new(&a, tiny_shape());
    model_fill(&a, 21);
    ckpt_save(path, &a.st, MPI_COMM_NULL);

    mkdir(tmp, 0755);
    expect_death("save blocked by .tmp", save_case, path, "cannot write checkpoint");
    rmdir(tmp);
    if (geteuid() != 0) {
        chmod(sub, 0555);
        expect_death("save to read-only dir", save_case, path, "cannot write checkpoint");
        chmod(sub, 0755);
    }
    model_new(&b, tiny_shape());
    ckpt_load(path, &b.st, MPI_COMM_NULL);
    check_same(&a, &b, 1); /* the old checkpoint, intact */

    /* a .tmp left by a crash: loading ignores it, saving replaces it */
    write_text(tmp, "half a checkpoint");
    ckpt_load(path, &b.st, MPI_COMM_NULL);
    check_same(&a, &b, 1);
    ckpt_save(path, &a.st, MPI_COMM_NULL);
    CHECK(!file_exists(tmp));
    model_free(&a);
    model_free(&b);
    printf("ok   failed save and stale .tmp\n");
}

static void serial_checks(const char *workdir) {
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/serial", workdir);
    mkdir_p(dir);
    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    roundtrip(path, MPI_COMM_NULL);
    roundtrip(path, MPI_COMM_NULL); /* over an existing file */
    printf("ok   serial round trip\n");
    snprintf(path, sizeof path, "%s/weights_only.h5", dir);
    weights_only_state(path);
    bare_files(dir);
    refusals(dir);
    failed_save(dir);
}

/* ------------------------------------------------------------------------- */
/* collective checks (MPI-IO) */

static void collective_checks(const char *workdir) {
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char dir[1024], path[1100], tmp[1200];
    snprintf(dir, sizeof dir, "%s/mpi%d", workdir, size);
    if (rank == 0) mkdir_p(dir);
    MPI_Barrier(MPI_COMM_WORLD);

    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    roundtrip(path, MPI_COMM_WORLD);
    hid_t f = h5_open_read(path, MPI_COMM_NULL);
    CHECK(h5_get_attr_int(f, path, "/state", "world_size") == size);
    h5_close(f);

    /* a stale .tmp does not disturb loading */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (rank == 0) write_text(tmp, "half a checkpoint");
    MPI_Barrier(MPI_COMM_WORLD);
    Model a, b;
    model_new(&a, tiny_shape());
    model_fill(&a, 7);
    model_new(&b, tiny_shape());
    ckpt_load(path, &b.st, MPI_COMM_WORLD);
    check_same(&a, &b, 1);

    /* a bare weights file, loaded collectively */
    snprintf(path, sizeof path, "%s/bare.h5", dir);
    if (rank == 0) write_bare(path, &a, BARE_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    memset(b.params, 0, b.pt.total * sizeof(float));
    CHECK(ckpt_load(path, &b.st, MPI_COMM_WORLD) == CKPT_BARE);
    check_same(&a, &b, 0);

    /* each rank alone on MPI_COMM_SELF: "writer 0" is a rank of that comm */
    snprintf(path, sizeof path, "%s/self%d.h5", dir, rank);
    ckpt_save(path, &a.st, MPI_COMM_SELF);
    memset(b.params, 0, b.pt.total * sizeof(float));
    ckpt_load(path, &b.st, MPI_COMM_SELF);
    check_same(&a, &b, 1);
    model_free(&a);
    model_free(&b);
    if (rank == 0) printf("ok   collective round trip on %d rank(s)\n", size);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <work dir> [--collective]\n", argv[0]);
        return 2;
    }
    int collective_only = argc > 2 && !strcmp(argv[2], "--collective");
    if (!collective_only) serial_checks(argv[1]);

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    collective_checks(argv[1]);
    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    if (total) {
        if (rank == 0) fprintf(stderr, "%d check(s) failed\n", total);
        return 1;
    }
    if (rank == 0) printf("all checkpoint tests passed\n");
    return 0;
}
