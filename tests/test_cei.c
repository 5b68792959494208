/* CEI tests (label cei).
 *   test_cei model <work dir>      scores on a hand-built model: a dominant block ranks first, an
 *                                  exactly-identity block scores exactly 0, determinism, a partial
 *                                  last batch, agreement with a slow one-sample-at-a-time computation
 *   test_cei schedule <work dir>   /schedule/cei and /schedule/order: round trip in a checkpoint and
 *                                  a bare weights file, replacement, refusals
 *   test_cei e2e <entprog> <deck> <work dir>
 *                                  entprog datagen + 3 train steps + entprog cei, outputs and the
 *                                  checkpoint, and bad invocations
 * Nothing here calls MPI_Init: cases that must die run in forked children,
 * and entprog runs as a child process. */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "train/cei.h"
#include "io/checkpoint.h"
#include "io/ckpt_schedule.h"
#include "data/datagen.h"
#include "core/die.h"
#include "io/h5util.h"

static int failures = 0;
#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            failures++;                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

/* The hand-built model of the brief: small enough that the slow reference runs in a second. */
static const ModelShape SMALL = {.F = 2, .C = 3, .H = 8, .W = 8, .p = 2, .D = 16, .NH = 2, .L = 4,
                                 .mlp_ratio = 4, .Cp = 3, .s = 2, .Cg = 4};
enum { DOMINANT = 1, IDENTITY = 3 };      /* the two special blocks of the model test */
enum { GATE_S = 2, GATE_T = 5, GATE_M = 8 }; /* chunks of the [9D] ada output */

/* ------------------------------------------------------------------------- */
/* helpers */

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

/* Whole file as bytes (for "unchanged" checks); *n gets the size. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { *n = 0; return NULL; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = ep_malloc((size_t)len + 1, "file bytes");
    *n = fread(buf, 1, (size_t)len, f);
    buf[*n] = 0;
    fclose(f);
    return buf;
}

static int same_file(const char *path, const char *bytes, size_t n) {
    size_t m;
    char *now = slurp(path, &m);
    int same = now && m == n && memcmp(now, bytes, n) == 0;
    free(now);
    return same;
}

#include "expect_death.h"

/* Runs argv[0] with cwd as working directory; stdout to out_log (may be NULL), stderr into err.
 * Returns the exit code (or 128 + signal). */
static int run_child(char *const argv[], const char *cwd, const char *out_log, char *err, size_t errn) {
    int fd[2];
    if (pipe(fd) != 0) { perror("pipe"); exit(2); }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(cwd) != 0) _exit(126);
        FILE *o = freopen(out_log ? out_log : "/dev/null", "w", stdout);
        (void)o;
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    for (ssize_t got; n < errn - 1 && (got = read(fd[0], err + n, errn - 1 - n)) > 0;) n += (size_t)got;
    err[n] = 0;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Relative agreement, exact zeros included. */
static int close_rel(double a, double b, double rel) {
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= rel * scale;
}

/* ------------------------------------------------------------------------- */
/* model test */

static Deck small_deck(const char *dir) {
    Deck d;
    memset(&d, 0, sizeof d);
    snprintf(d.path, sizeof d.path, "(test_cei)");
    d.model = SMALL;
    snprintf(d.data.dir, sizeof d.data.dir, "%s", dir);
    d.data.n_train = 3;
    d.data.frames = 6;
    d.data.frame_stride = 1;
    d.data.seed = 9;
    d.data.fps = 8;
    return d;
}

static float uniform_pm(Rng *r, float bound) { return (2.0f * rng_uniform(r) - 1.0f) * bound; }

/* Every tensor random (the zero-initialised ones too), weights ~ U(+-1/sqrt(fan_in)), biases ~ U(+-0.1),
 * so every block has non-zero gates and the output is not constant. */
static void random_weights(Model *m, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < m->pt.n; i++) {
        const ParamInfo *p = &m->pt.info[i];
        float bound = p->ndim >= 2 ? 1.0f / sqrtf((float)(p->numel / (size_t)p->shape[0])) : 0.1f;
        for (size_t j = 0; j < p->numel; j++) m->params[p->offset + j] = uniform_pm(&r, bound);
    }
}

static float *param(Model *m, int idx) { return m->params + m->pt.info[idx].offset; }
static float *block_param(Model *m, int b, int k) { return m->params + param_block(&m->pt, b, k)->offset; }

/* Sets one D-wide chunk of block b's modulation to the constant `value` for every c. */
static void set_gate(Model *m, int b, int chunk, float value) {
    int D = m->shape.D;
    memset(block_param(m, b, BP_ADA_W) + (size_t)chunk * D * D, 0, (size_t)D * D * sizeof(float));
    for (int j = 0; j < D; j++) block_param(m, b, BP_ADA_B)[chunk * D + j] = value;
}

/* The block whose removal inflates the output most. Block K gets gate_m = 1
 * exactly and an MLP bias of 1000 v for a fixed zero-mean direction v, so
 * every token (both passes) carries 1000 v after block K. The final layer is
 * made blind to v (no final modulation, zero bias, output rows orthogonal to
 * v): with K in place the final LayerNorm divides the rest of the stream by
 * |1000 v| and eps_hat shrinks about 1000-fold; skipping K restores an O(1)
 * output, so pi(K) ~ log(1000) ~ 7, while skipping any other block changes
 * the small remainder by an O(1) factor. (Merely scaling fc2 up would not
 * do: the final LayerNorm makes eps_hat blind to the stream's scale, so
 * the sign of pi for a "big" block would be arbitrary.) */
static void make_dominant(Model *m, int K, uint64_t seed) {
    int D = m->shape.D, rows = m->shape.p * m->shape.p * m->shape.C;
    Rng r;
    rng_seed(&r, seed);
    double v[64], mean = 0, norm = 0;
    for (int j = 0; j < D; j++) mean += v[j] = uniform_pm(&r, 1.0f);
    for (int j = 0; j < D; j++) {
        v[j] -= mean / D;
        norm += v[j] * v[j];
    }
    norm = sqrt(norm / D);
    for (int j = 0; j < D; j++) v[j] /= norm; /* unit RMS */
    set_gate(m, K, GATE_M, 1.0f);
    for (int j = 0; j < D; j++) block_param(m, K, BP_FC2_B)[j] = (float)(1000.0 * v[j]);
    memset(param(m, m->pt.f_ada_w), 0, m->pt.info[m->pt.f_ada_w].numel * sizeof(float));
    memset(param(m, m->pt.f_ada_b), 0, m->pt.info[m->pt.f_ada_b].numel * sizeof(float));
    memset(param(m, m->pt.f_lin_b), 0, m->pt.info[m->pt.f_lin_b].numel * sizeof(float));
    for (int o = 0; o < rows; o++) {
        float *w = param(m, m->pt.f_lin_w) + (size_t)o * D;
        double dot = 0, vv = 0;
        for (int j = 0; j < D; j++) dot += w[j] * v[j], vv += v[j] * v[j];
        for (int j = 0; j < D; j++) w[j] = (float)(w[j] - dot / vv * v[j]);
    }
}

/* All three gates zero: block b adds exactly 0 to the video and the reference
 * streams, and its bank only feeds its own gated spatial attention. */
static void make_identity(Model *m, int b) {
    set_gate(m, b, GATE_S, 0.0f);
    set_gate(m, b, GATE_T, 0.0f);
    set_gate(m, b, GATE_M, 0.0f);
}

/* special = 0: random weights only; 1: with the dominant and the identity block. */
static void build_model(Model *m, int B, int special) {
    model_create(m, &SMALL);
    random_weights(m, 123);
    if (special) {
        make_dominant(m, DOMINANT, 77);
        make_identity(m, IDENTITY);
    }
    model_set_batch(m, B, SMALL.F);
}

/* Population std in long double, two passes: an independent sigma. */
static double slow_sigma(const float *x, size_t n) {
    long double mean = 0, ss = 0;
    for (size_t j = 0; j < n; j++) mean += x[j];
    mean /= n;
    for (size_t j = 0; j < n; j++) ss += (x[j] - mean) * (x[j] - mean);
    return (double)sqrtl(ss / n);
}

/* The probe tuples as docs/cei.md specifies them, drawn here without cei.c,
 * one sample at a time through a B = 1 model. */
static void slow_cei(Model *m1, Dataset *ds, int N, uint64_t seed, double *pi) {
    const ModelShape *s = &SMALL;
    size_t clip = (size_t)s->F * s->C * s->H * s->W, frame = (size_t)s->C * s->H * s->W;
    size_t pclip = (size_t)s->F * s->Cp * s->s * s->H * s->s * s->W;
    float *x0 = ep_malloc(clip * 4, "x0"), *eps = ep_malloc(clip * 4, "eps"), *x = ep_malloc(clip * 4, "x");
    float *ref = ep_malloc(frame * 4, "ref"), *pose = ep_malloc(pclip * 4, "pose");
    float *full = ep_malloc(clip * 4, "full"), *part = ep_malloc(clip * 4, "part");
    int skip[8] = {0}, t;
    uint8_t zero = 0;
    Diffusion d;
    diffusion_init(&d);
    Rng r;
    rng_seed_stream(&r, seed, 11);
    for (int b = 0; b < s->L; b++) pi[b] = 0;
    m1->skip = skip;
    for (int i = 0; i < N; i++) {
        int video, start, rf;
        dataset_pick(ds, &r, s->F, &video, &start, &rf);
        t = (int)rng_below(&r, 1000);
        for (size_t j = 0; j < clip; j++) eps[j] = rng_normal(&r);
        dataset_read_clip(ds, video, start, s->F, x0, pose);
        dataset_read_frame(ds, video, rf, ref);
        diffusion_noise(&d, x, x0, eps, &t, 1, clip);
        Batch in = {x, &t, ref, pose, &zero, &zero};
        model_forward(m1, &in, full);
        double sf = slow_sigma(full, clip);
        for (int b = 0; b < s->L; b++) {
            skip[b] = 1;
            model_forward(m1, &in, part);
            skip[b] = 0;
            pi[b] += log(slow_sigma(part, clip) / sf);
        }
    }
    for (int b = 0; b < s->L; b++) pi[b] /= N;
    m1->skip = NULL;
    free(x0), free(eps), free(x), free(ref), free(pose), free(full), free(part);
}

/* The reason pi(IDENTITY) is exactly 0: skipping it leaves eps_hat bit for bit the same. */
static void check_identity_forward(Model *m, Dataset *ds) {
    CeiBatch pb;
    cei_batch_alloc(&pb, &SMALL, m->B);
    Diffusion d;
    diffusion_init(&d);
    Rng r;
    rng_seed_stream(&r, 5, CEI_STREAM);
    for (int i = 0; i < m->B; i++) cei_probe_draw(&r, ds, &d, &SMALL, &pb, i);
    size_t n = (size_t)m->B * SMALL.F * SMALL.C * SMALL.H * SMALL.W;
    float *a = ep_malloc(n * 4, "a"), *b = ep_malloc(n * 4, "b");
    Batch in = cei_batch_view(&pb);
    int skip[4] = {0};
    skip[IDENTITY] = 1;
    model_forward(m, &in, a);
    m->skip = skip;
    model_forward(m, &in, b);
    m->skip = NULL;
    CHECK(memcmp(a, b, n * 4) == 0, "skipping the all-gates-zero block %d changed eps_hat", IDENTITY);
    free(a), free(b);
    cei_batch_free(&pb);
}

static void print_pi(const char *label, const double *pi) {
    printf("%-28s", label);
    for (int b = 0; b < SMALL.L; b++) printf(" %+.9f", pi[b]);
    printf("\n");
}

static int model_test(const char *work) {
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/data", work);
    Deck deck = small_deck(dir);
    datagen_run(&deck);
    snprintf(path, sizeof path, "%s/train.h5", dir);
    Dataset *ds = dataset_open(path, &SMALL, 1);
    const int L = SMALL.L;
    double pi[4], again[4], slow[4], pi3[4];
    int order[4], sentinel[4] = {0, 0, 0, 0};

    Model m;
    build_model(&m, 2, 1);
    check_identity_forward(&m, ds);
    m.skip = sentinel; /* cei_compute must hand back the caller's skip pointer */
    cei_compute(&m, ds, 5, 42, pi);
    CHECK(m.skip == sentinel, "cei_compute did not restore m->skip");
    m.skip = NULL;
    print_pi("pi (B=2, N=5)", pi);
    cei_rank(pi, L, order);
    CHECK(order[0] == DOMINANT, "the dominant block %d should rank first, order starts with %d", DOMINANT, order[0]);
    for (int b = 0; b < L; b++)
        if (b != DOMINANT) CHECK(pi[DOMINANT] > pi[b] + 3, "pi(%d) = %g not well above pi(%d) = %g", DOMINANT, pi[DOMINANT], b, pi[b]);
    CHECK(pi[IDENTITY] == 0.0, "the identity block %d has pi = %.17g, want exactly 0", IDENTITY, pi[IDENTITY]);

    cei_compute(&m, ds, 5, 42, again);
    CHECK(memcmp(pi, again, sizeof pi) == 0, "two cei_compute calls differ");
    cei_compute(&m, ds, 5, 43, again);
    CHECK(memcmp(pi, again, sizeof pi) != 0, "another seed gave the same scores (probe set ignores the seed?)");

    /* B = 3 with N = 7 (a last batch of 1) against one sample at a time, on
     * this model and on one with random weights only */
    for (int special = 1; special >= 0; special--) {
        Model m3, m1;
        build_model(&m3, 3, special);
        cei_compute(&m3, ds, 7, 42, pi3);
        build_model(&m1, 1, special);
        slow_cei(&m1, ds, 7, 42, slow);
        print_pi(special ? "pi (B=3, N=7)" : "random: pi (B=3, N=7)", pi3);
        print_pi(special ? "pi (slow, B=1, N=7)" : "random: pi (slow, B=1, N=7)", slow);
        double worst = 0;
        for (int b = 0; b < L; b++) {
            CHECK(close_rel(pi3[b], slow[b], 1e-6), "block %d: batched %.17g vs slow %.17g", b, pi3[b], slow[b]);
            if (slow[b] != 0) worst = fmax(worst, fabs(pi3[b] - slow[b]) / fabs(slow[b]));
        }
        printf("largest relative difference batched vs slow: %.3g\n", worst);
        if (special) {
            /* tuple i does not depend on B, so N = 5 at B = 3 also matches N = 5 at B = 2 */
            cei_compute(&m3, ds, 5, 42, again);
            for (int b = 0; b < L; b++)
                CHECK(close_rel(pi[b], again[b], 1e-6), "block %d: B=2 %.17g vs B=3 %.17g", b, pi[b], again[b]);
        }
        model_destroy(&m3), model_destroy(&m1);
    }

    /* ranking ties: lower block first */
    double tie[5] = {0.5, 1.0, 0.5, 1.0, -2.0};
    int to[5];
    cei_rank(tie, 5, to);
    CHECK(to[0] == 1 && to[1] == 3 && to[2] == 0 && to[3] == 2 && to[4] == 4, "tie order %d %d %d %d %d", to[0], to[1],
          to[2], to[3], to[4]);

    model_destroy(&m);
    dataset_close(ds);
    if (failures) return fprintf(stderr, "test_cei model: %d failure(s)\n", failures), 1;
    printf("test_cei model: ok\n");
    return 0;
}

/* ------------------------------------------------------------------------- */
/* schedule test */

static const ModelShape TINY = {.F = 4, .C = 3, .H = 16, .W = 16, .p = 2, .D = 32, .NH = 2, .L = 3,
                                .mlp_ratio = 4, .Cp = 3, .s = 2, .Cg = 8};

typedef struct {
    ParamTable pt;
    float *params, *m, *v;
    CkptState st;
} Weights;

static void weights_new(Weights *w, uint64_t seed) {
    param_table_build(&w->pt, &TINY);
    size_t n = w->pt.total;
    w->params = ep_malloc(n * 4, "params"), w->m = ep_malloc(n * 4, "m"), w->v = ep_malloc(n * 4, "v");
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) w->params[i] = rng_normal(&r), w->m[i] = rng_normal(&r), w->v[i] = rng_uniform(&r);
    w->st = (CkptState){.pt = &w->pt, .shape = TINY, .params = w->params, .m = w->m, .v = w->v, .step = 17,
                        .samples_seen = 34, .n_rng = 1, .deck_text = "[train]\nsteps = 17\n"};
    rng_seed(&w->st.rng[0], seed + 1);
}

static void weights_free(Weights *w) {
    free(w->params), free(w->m), free(w->v);
    param_table_free(&w->pt);
}

/* A weights file as another tool would write it: /model/<name> and the root shape (no F, state, checksum). */
static void write_bare(const char *path, const Weights *w) {
    hid_t f = h5_create(path, MPI_COMM_NULL);
    ModelShape s = TINY;
    const char *names[] = {"C", "H", "W", "p", "D", "NH", "L", "mlp_ratio", "Cp", "s", "Cg"};
    int vals[] = {s.C, s.H, s.W, s.p, s.D, s.NH, s.L, s.mlp_ratio, s.Cp, s.s, s.Cg};
    for (int i = 0; i < 11; i++) h5_attr_int(f, "/", names[i], vals[i]);
    for (int i = 0; i < w->pt.n; i++) {
        const ParamInfo *p = &w->pt.info[i];
        char name[128];
        hsize_t dims[4];
        for (int k = 0; k < p->ndim; k++) dims[k] = (hsize_t)p->shape[k];
        snprintf(name, sizeof name, "/model/%s", p->name);
        h5_write_f32(f, name, w->params + p->offset, p->ndim, dims, 0);
    }
    h5_close(f);
}

/* Raw HDF5 edits for the refusal cases, done in place (the file is a scratch copy). */
static void raw_put_i32(const char *path, const char *dset, const int32_t *v, int n) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) ep_die("test: cannot open %s", path);
    if (h5_exists(f, dset)) H5Ldelete(f, dset, H5P_DEFAULT);
    hsize_t d = (hsize_t)n;
    h5_write_i32(f, dset, v, 1, &d, 0);
    H5Fclose(f);
}

static void raw_delete(const char *path, const char *dset) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) ep_die("test: cannot open %s", path);
    H5Ldelete(f, dset, H5P_DEFAULT);
    H5Fclose(f);
}

static void copy_bytes(const char *from, const char *to) {
    size_t n;
    char *b = slurp(from, &n);
    FILE *f = fopen(to, "wb");
    if (!b || !f) ep_die("test: cannot copy %s to %s", from, to);
    fwrite(b, 1, n, f);
    fclose(f);
    free(b);
}

typedef struct {
    const char *path;
    const double *cei;
    const int *order;
    int L;
} SchedCase;

static void write_case(const void *arg) {
    const SchedCase *c = arg;
    ckpt_write_cei(c->path, c->cei, c->order, c->L);
}

static void read_case(const void *arg) {
    const SchedCase *c = arg;
    double cei[8];
    int order[8];
    ckpt_read_cei(c->path, cei, order, c->L);
}

/* Loads path into fresh buffers (checksum verified) and compares the weights with w. */
static int load_flags(const char *path, const Weights *w) {
    Weights b;
    weights_new(&b, 999);
    int flags = ckpt_load(path, &b.st, MPI_COMM_NULL);
    CHECK(memcmp(b.params, w->params, w->pt.total * 4) == 0, "%s: weights changed", path);
    weights_free(&b);
    return flags;
}

static void check_read(const char *path, const double *want_cei, const int *want_order) {
    double cei[3];
    int order[3];
    CHECK(ckpt_read_cei(path, cei, order, 3) == 1, "%s: no schedule read back", path);
    CHECK(memcmp(cei, want_cei, sizeof cei) == 0, "%s: cei %.17g %.17g %.17g", path, cei[0], cei[1], cei[2]);
    CHECK(memcmp(order, want_order, sizeof order) == 0, "%s: order %d %d %d", path, order[0], order[1], order[2]);
}

static void schedule_roundtrip(const char *dir, Weights *w) {
    char ck[700], tmp[720], bare[700];
    snprintf(ck, sizeof ck, "%s/ckpt.h5", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", ck);
    ckpt_save(ck, &w->st, MPI_COMM_NULL);
    double cei[3], first[3] = {0.25, -1.5, 1e-300};
    int order[3], first_order[3] = {0, 2, 1};
    CHECK(ckpt_read_cei(ck, cei, order, 3) == 0, "a fresh checkpoint reports a schedule");

    ckpt_write_cei(ck, first, first_order, 3);
    check_read(ck, first, first_order);
    CHECK(!file_exists(tmp), "%s left behind", tmp);
    CHECK(load_flags(ck, w) == (CKPT_HAS_OPT | CKPT_HAS_STATE), "checkpoint flags after the schedule");

    /* replacing keeps other /schedule entries (Ent-Prog's stages) */
    int32_t stages[2] = {7, 8};
    raw_put_i32(ck, "/schedule/stages", stages, 2);
    double second[3] = {3.0, 2.0, 1.0};
    int second_order[3] = {0, 1, 2};
    ckpt_write_cei(ck, second, second_order, 3);
    check_read(ck, second, second_order);
    hid_t f = h5_open_read(ck, MPI_COMM_NULL);
    int32_t back[2] = {0, 0};
    hsize_t two = 2;
    h5_read_i32(f, ck, "/schedule/stages", back, 1, &two);
    h5_close(f);
    CHECK(back[0] == 7 && back[1] == 8, "/schedule/stages lost on rewrite");
    CHECK(load_flags(ck, w) == (CKPT_HAS_OPT | CKPT_HAS_STATE), "checkpoint flags after the rewrite");
    printf("ok   checkpoint: add, read back, replace, keep stages, checksum\n");

    snprintf(bare, sizeof bare, "%s/bare.h5", dir);
    write_bare(bare, w);
    CHECK(ckpt_read_cei(bare, cei, order, 3) == 0, "a bare file reports a schedule");
    ckpt_write_cei(bare, first, first_order, 3);
    check_read(bare, first, first_order);
    CHECK(load_flags(bare, w) == CKPT_BARE, "bare file flags");
    printf("ok   bare weights file: add, read back, still loads\n");
}

static void schedule_refusals(const char *dir) {
    char ck[700], tmp[720], bad[700], missing[700];
    snprintf(ck, sizeof ck, "%s/ckpt.h5", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", ck);
    snprintf(bad, sizeof bad, "%s/bad.h5", dir);
    snprintf(missing, sizeof missing, "%s/nowhere.h5", dir);
    size_t n;
    char *before = slurp(ck, &n);
    double cei[3] = {1, 2, 3}, inf[3] = {1, INFINITY, 3}, four[4] = {1, 2, 3, 4};
    int repeated[3] = {0, 0, 1}, out_of_range[3] = {0, 3, 1}, negative[3] = {-1, 0, 1}, ok[3] = {2, 1, 0}, ok4[4] = {0, 1, 2, 3};
    SchedCase c = {ck, cei, repeated, 3};
    expect_death("write: repeated block", write_case, &c, ck);
    c.order = out_of_range;
    expect_death("write: block out of range", write_case, &c, "not a permutation");
    c.order = negative;
    expect_death("write: negative block", write_case, &c, "not a permutation");
    c = (SchedCase){ck, inf, ok, 3};
    expect_death("write: non-finite score", write_case, &c, "non-finite");
    c = (SchedCase){ck, four, ok4, 4};
    expect_death("write: wrong L", write_case, &c, "L = 3");
    c = (SchedCase){missing, cei, ok, 3};
    expect_death("write: missing file", write_case, &c, missing);
    CHECK(same_file(ck, before, n), "a refused write changed %s", ck);
    CHECK(!file_exists(tmp), "a refused write left %s", tmp);
    free(before);

    int32_t not_perm[3] = {2, 2, 0};
    copy_bytes(ck, bad);
    raw_put_i32(bad, "/schedule/order", not_perm, 3);
    c = (SchedCase){bad, NULL, NULL, 3};
    expect_death("read: order not a permutation", read_case, &c, bad);
    int32_t short_order[2] = {0, 1};
    raw_put_i32(bad, "/schedule/order", short_order, 2);
    expect_death("read: order of the wrong length", read_case, &c, "/schedule/order");
    raw_delete(bad, "/schedule/order");
    expect_death("read: cei without order", read_case, &c, "without /schedule/order");
    c.L = 4;
    copy_bytes(ck, bad);
    expect_death("read: schedule for another L", read_case, &c, "/schedule/cei");
}

static int schedule_test(const char *work) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/schedule", work);
    mkdir_p(dir);
    Weights w;
    weights_new(&w, 3);
    schedule_roundtrip(dir, &w);
    schedule_refusals(dir);
    weights_free(&w);
    if (failures) return fprintf(stderr, "test_cei schedule: %d failure(s)\n", failures), 1;
    printf("test_cei schedule: ok\n");
    return 0;
}

/* ------------------------------------------------------------------------- */
/* end-to-end test */

typedef struct {
    const char *exe, *deck, *work;
} E2E;

/* Runs entprog with up to 8 arguments in the work dir; returns the exit code, stderr in err. */
static int entprog(const E2E *e, char *err, size_t errn, const char *log, const char *a1, const char *a2,
                   const char *a3, const char *a4, const char *a5, const char *a6, const char *a7, const char *a8) {
    char *argv[10] = {(char *)e->exe, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, (char *)a6,
                      (char *)a7, (char *)a8, NULL};
    return run_child(argv, e->work, log, err, errn);
}

/* cei.csv: header, then block,pi,rank for blocks 0..L-1 in order. Returns the number of rows. */
static int read_csv(const char *path, double *pi, int *rank, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    int rows = 0;
    if (!fgets(line, sizeof line, f) || strcmp(line, "block,pi,rank\n") != 0) rows = -2;
    int b, r;
    double v;
    while (rows >= 0 && fgets(line, sizeof line, f) && sscanf(line, "%d,%lf,%d", &b, &v, &r) == 3) {
        if (b != rows || rows >= cap) { rows = -3; break; }
        pi[rows] = v, rank[rows] = r, rows++;
    }
    fclose(f);
    return rows;
}

/* A PNG of CHART size: signature, then the IHDR width and height (big-endian). */
static int png_size_is(const char *path, int w, int h) {
    size_t n;
    unsigned char *b = (unsigned char *)slurp(path, &n);
    int ok = b && n > 24 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8);
    if (ok) {
        unsigned pw = (unsigned)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
        unsigned ph = (unsigned)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
        ok = pw == (unsigned)w && ph == (unsigned)h;
    }
    free(b);
    return ok;
}

/* The csv, the checkpoint's schedule and its checksum agree after a run writing into out. */
static void check_outputs(const char *work, const char *out, const char *ckpt) {
    char csv[800], png[800];
    snprintf(csv, sizeof csv, "%s/%s/cei.csv", work, out);
    snprintf(png, sizeof png, "%s/%s/cei.png", work, out);
    double pi[3], cei[3];
    int rank[3], order[3];
    CHECK(read_csv(csv, pi, rank, 3) == 3, "%s: expected 3 rows of block,pi,rank", csv);
    CHECK(png_size_is(png, 640, 360), "%s: not a 640x360 PNG", png);
    CHECK(ckpt_read_cei(ckpt, cei, order, 3) == 1, "%s: no /schedule after entprog cei", ckpt);
    for (int b = 0; b < 3; b++) {
        CHECK(cei[b] == pi[b], "block %d: checkpoint %.17g, csv %.17g", b, cei[b], pi[b]);
        CHECK(order[rank[b] - 1] == b, "block %d: csv rank %d but order[%d] = %d", b, rank[b], rank[b] - 1,
              order[rank[b] - 1]);
    }
    for (int k = 1; k < 3; k++) CHECK(cei[order[k - 1]] >= cei[order[k]], "order is not by decreasing pi");
    /* the checkpoint still loads, checksum included, with its training state */
    ParamTable pt;
    param_table_build(&pt, &TINY);
    float *p = ep_malloc(pt.total * 4, "params"), *m = ep_malloc(pt.total * 4, "m"), *v = ep_malloc(pt.total * 4, "v");
    CkptState st = {.pt = &pt, .shape = TINY, .params = p, .m = m, .v = v};
    CHECK(ckpt_load(ckpt, &st, MPI_COMM_NULL) & CKPT_HAS_STATE, "%s lost its state", ckpt);
    CHECK(st.step == 3, "%s: step %lld", ckpt, st.step);
    free(p), free(m), free(v);
    param_table_free(&pt);
}

static void expect_failure(const E2E *e, const char *what, const char *want, const char *a1, const char *a2,
                           const char *a3, const char *a4, const char *a5, const char *a6) {
    char err[4096];
    int rc = entprog(e, err, sizeof err, NULL, a1, a2, a3, a4, a5, a6, NULL, NULL);
    CHECK(rc != 0 && strstr(err, want), "%s: want failure mentioning '%s', got rc %d: %s", what, want, rc, err);
    if (rc != 0 && strstr(err, want)) printf("ok   %-34s %s", what, err);
}

static int e2e_test(const char *exe, const char *deck, const char *work) {
    E2E e = {exe, deck, work};
    char err[8192], ckpt[700], log[700], tmp[720];
    char *clean[] = {"/bin/rm", "-rf", "data", "run", "out2", "cei.log", NULL};
    run_child(clean, work, NULL, err, sizeof err);
    snprintf(log, sizeof log, "%s/cei.log", work);
    int rc = entprog(&e, err, sizeof err, NULL, "datagen", deck, NULL, NULL, NULL, NULL, NULL, NULL);
    CHECK(rc == 0, "entprog datagen: rc %d: %s", rc, err);
    rc = entprog(&e, err, sizeof err, NULL, "train", deck, "--set", "train.steps=3", "--set", "train.out_dir=run", NULL,
                 NULL);
    CHECK(rc == 0, "entprog train: rc %d: %s", rc, err);
    snprintf(ckpt, sizeof ckpt, "%s/run/ckpt_00000003.h5", work);
    snprintf(tmp, sizeof tmp, "%s.tmp", ckpt);
    if (failures) return fprintf(stderr, "test_cei e2e: set-up failed\n"), 1;

    rc = entprog(&e, err, sizeof err, log, "cei", deck, "--ckpt", "run/ckpt_00000003.h5", "--n", "8", NULL, NULL);
    CHECK(rc == 0, "entprog cei: rc %d: %s", rc, err);
    check_outputs(work, "run", ckpt);
    CHECK(!file_exists(tmp), "%s left behind", tmp);
    printf("ok   entprog cei --n 8: cei.csv, cei.png, /schedule in the checkpoint, checksum\n");

    /* the same run again gives the same scores; --n 3 (partial batch) into another folder replaces them */
    char first[800];
    size_t n1, n2;
    snprintf(first, sizeof first, "%s/run/cei.csv", work);
    char *csv1 = slurp(first, &n1);
    rc = entprog(&e, err, sizeof err, NULL, "cei", deck, "--ckpt", "run/ckpt_00000003.h5", "--n", "8", NULL, NULL);
    char *csv2 = slurp(first, &n2);
    CHECK(rc == 0 && csv1 && csv2 && n1 == n2 && !memcmp(csv1, csv2, n1), "a second identical run gave other scores");
    free(csv1), free(csv2);
    rc = entprog(&e, err, sizeof err, NULL, "cei", deck, "--ckpt", "run/ckpt_00000003.h5", "--n", "3", "--out",
                 "out2/sub");
    CHECK(rc == 0, "entprog cei --out: rc %d: %s", rc, err);
    check_outputs(work, "out2/sub", ckpt);
    printf("ok   entprog cei: deterministic; --n 3 --out replaces the schedule\n");

    size_t n;
    char *before = slurp(ckpt, &n);
    expect_failure(&e, "no --ckpt", "--ckpt", "cei", deck, "--n", "8", NULL, NULL);
    expect_failure(&e, "--n 0", "--n", "cei", deck, "--ckpt", "run/ckpt_00000003.h5", "--n", "0");
    expect_failure(&e, "--n not a number", "--n '8x'", "cei", deck, "--ckpt", "run/ckpt_00000003.h5", "--n", "8x");
    expect_failure(&e, "--n without a value", "--n needs a value", "cei", deck, "--ckpt", "run/ckpt_00000003.h5", "--n",
                   NULL);
    expect_failure(&e, "missing checkpoint", "run/nothing.h5", "cei", deck, "--ckpt", "run/nothing.h5", NULL, NULL);
    expect_failure(&e, "unknown option", "--bogus", "cei", deck, "--ckpt", "run/ckpt_00000003.h5", "--bogus", NULL);
    expect_failure(&e, "missing deck", "nodeck.ini", "cei", "nodeck.ini", "--ckpt", "run/ckpt_00000003.h5", NULL, NULL);
    expect_failure(&e, "no deck", "no input deck", "cei", "--ckpt", "run/ckpt_00000003.h5", NULL, NULL, NULL);
    CHECK(same_file(ckpt, before, n), "a failed entprog cei changed the checkpoint");
    free(before);
    if (failures) return fprintf(stderr, "test_cei e2e: %d failure(s)\n", failures), 1;
    printf("test_cei e2e: ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "model")) return model_test(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "schedule")) return schedule_test(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "e2e")) return e2e_test(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: test_cei model <work> | schedule <work> | e2e <entprog> <deck> <work>\n");
    return 2;
}
