/* entprog cei <deck> --ckpt CKPT [--n N] [--out DIR]
 * CEI scores of the blocks of a checkpoint on N probe tuples of the deck's
 * training set (cei.h), printed as a table, written as <out>/cei.csv and a
 * bar chart <out>/cei.png, and stored in the checkpoint as /schedule/cei
 * and /schedule/order. */
#define _POSIX_C_SOURCE 200809L
#include "ops.h"
#include "cei.h"
#include "checkpoint.h"
#include "ckpt_schedule.h"
#include "commands.h"
#include "paths.h"
#include "deck.h"
#include "die.h"
#include "png_write.h"
#include "raster.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CEI_USAGE "usage: entprog cei <deck> --ckpt CKPT [--n N] [--out DIR]"
#define CEI_DEFAULT_N 1000
#define CHART_W 640
#define CHART_H 360
#define CHART_MARGIN 24

typedef struct {
    const char *deck, *ckpt, *out;
    int n;
} CeiArgs;

static int parse_count(const char *s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > INT_MAX)
        ep_die("cei: --n '%s' is not a whole number of probe tuples >= 1", s);
    return (int)v;
}

static CeiArgs parse_args(int argc, char **argv) {
    CeiArgs a = {.n = CEI_DEFAULT_N};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        int is_opt = !strcmp(opt, "--ckpt") || !strcmp(opt, "--n") || !strcmp(opt, "--out");
        if (is_opt && i + 1 >= argc) ep_die("cei: %s needs a value (%s)", opt, CEI_USAGE);
        if (!strcmp(opt, "--ckpt")) a.ckpt = argv[++i];
        else if (!strcmp(opt, "--n")) a.n = parse_count(argv[++i]);
        else if (!strcmp(opt, "--out")) a.out = argv[++i];
        else if (opt[0] == '-') ep_die("cei: unknown option '%s' (%s)", opt, CEI_USAGE);
        else if (!a.deck) a.deck = opt;
        else ep_die("cei: unexpected argument '%s' (one deck only; %s)", opt, CEI_USAGE);
    }
    if (!a.deck) ep_die("cei: no input deck given (%s)", CEI_USAGE);
    if (!a.ckpt) ep_die("cei: --ckpt is required: the checkpoint whose blocks to score (%s)", CEI_USAGE);
    return a;
}

/* The folder of a file path ("." for a bare name). */
static void folder_of(const char *path, char *dir, size_t n) {
    snprintf(dir, n, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, n, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
}



/* rank[b]: 1 for the block with the highest score. */
static void ranks_of(const int *order, int L, int *rank) {
    for (int k = 0; k < L; k++) rank[order[k]] = k + 1;
}

static void write_csv(const char *path, const double *pi, const int *rank, int L) {
    FILE *fp = fopen(path, "w");
    if (!fp) ep_die("cei: cannot write '%s': %s", path, strerror(errno));
    fprintf(fp, "block,pi,rank\n");
    for (int b = 0; b < L; b++) fprintf(fp, "%d,%.17g,%d\n", b, pi[b], rank[b]);
    if (fclose(fp) != 0) ep_die("cei: cannot finish writing '%s': %s", path, strerror(errno));
}

/* ---- the bar chart: no text, so it needs nothing but raster.h ---- */

static void fill_rect(Canvas *c, int x0, int y0, int x1, int y1, const float rgb[3]) {
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    for (int ch = 0; ch < 3; ch++)
        for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < c->h; y++)
            for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < c->w; x++) *canvas_at(c, ch, y, x) = rgb[ch];
}

/* Value range shown: always includes 0 (the axis), 5% headroom, never empty. */
static void chart_range(const double *pi, int L, double *lo, double *hi) {
    *lo = 0, *hi = 0;
    for (int b = 0; b < L; b++) {
        if (pi[b] < *lo) *lo = pi[b];
        if (pi[b] > *hi) *hi = pi[b];
    }
    if (*hi - *lo <= 0) *hi = 1;
    double pad = 0.05 * (*hi - *lo);
    if (*hi > 0) *hi += pad;
    if (*lo < 0) *lo -= pad;
}

static void canvas_to_png(Canvas *c, const char *path) {
    uint8_t *rgb = ep_malloc((size_t)c->w * c->h * 3, "chart pixels");
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++)
            for (int ch = 0; ch < 3; ch++) rgb[((size_t)y * c->w + x) * 3 + ch] = to_byte(*canvas_at(c, ch, y, x));
    png_write_rgb(path, c->w, c->h, rgb);
    free(rgb);
}

/* Bars of pi(b) by block from a zero axis; the top-ranked half (ranks
 * 1..ceil(L/2), the blocks Ent-Prog unfreezes first) in orange, the rest blue. */
static void write_chart(const char *path, const double *pi, const int *rank, int L) {
    static const float white[3] = {1, 1, 1}, grey[3] = {.85f, .85f, .85f}, black[3] = {0, 0, 0};
    static const float top[3] = {.90f, .38f, .0f}, rest[3] = {.36f, .53f, .71f};
    Canvas c;
    canvas_init(&c, CHART_W, CHART_H);
    canvas_clear(&c, white);
    int x0 = CHART_MARGIN, x1 = CHART_W - CHART_MARGIN, y0 = CHART_MARGIN, y1 = CHART_H - CHART_MARGIN;
    fill_rect(&c, x0, y0, x1, y0, grey); /* frame lines above and below the plot */
    fill_rect(&c, x0, y1, x1, y1, grey);
    double lo, hi;
    chart_range(pi, L, &lo, &hi);
    double per = (y1 - y0) / (hi - lo), slot = (double)(x1 - x0) / L;
    int zero_y = y0 + (int)lround(hi * per);
    for (int b = 0; b < L; b++) {
        int left = x0 + (int)lround(slot * (b + 0.15)), right = x0 + (int)lround(slot * (b + 0.85)) - 1;
        int bar_y = y0 + (int)lround((hi - pi[b]) * per);
        if (right < left) right = left;
        fill_rect(&c, left, zero_y, right, bar_y, 2 * rank[b] <= L + 1 ? top : rest);
    }
    fill_rect(&c, x0, zero_y - 1, x1, zero_y, black);
    canvas_to_png(&c, path);
    canvas_free(&c);
}

/* ---- the command ---- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void print_table(const double *pi, const int *rank, int L) {
    printf("%6s %14s %5s\n", "block", "pi(b)", "rank");
    for (int b = 0; b < L; b++) printf("%6d %14.6g %5d\n", b, pi[b], rank[b]);
}

/* The checkpoint's parameters into a model of the deck's shape, batch and clip length. */
static void load_model(Model *m, const Deck *deck, const char *ckpt) {
    ops_select_named(deck->train.backend);
    model_create(m, &deck->model);
    CkptState st = {.pt = &m->pt, .shape = deck->model, .params = m->params};
    ckpt_load(ckpt, &st, MPI_COMM_NULL);
    m->forward_only = 1; /* CEI needs forward passes only */
    model_set_batch(m, deck->train.batch, deck->model.F);
}

int cmd_cei(int argc, char **argv) {
    CeiArgs a = parse_args(argc, argv);
    int world = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world > 1) ep_die("cei: runs on one rank (started on %d)", world);
    if (access(a.ckpt, R_OK) != 0) ep_die("cei: --ckpt '%s': %s", a.ckpt, strerror(errno));
    Deck deck;
    deck_load(&deck, a.deck);
    int L = deck.model.L;
    Model m;
    load_model(&m, &deck, a.ckpt);
    char path[DECK_PATH_MAX + 64], out[DECK_PATH_MAX + 64];
    path_join(path, sizeof path, deck.data.dir, "train.h5");
    Dataset *ds = dataset_open(path, &deck.model, deck.data.frame_stride);
    if (a.out) snprintf(out, sizeof out, "%s", a.out);
    else folder_of(a.ckpt, out, sizeof out);
    path_mkdirs(out, "--out");
    printf("entprog cei: %s, %d probe tuples from %s (seed %llu), batch %d, %d forward passes\n", a.ckpt, a.n, path,
           (unsigned long long)deck.train.seed, m.B, (L + 1) * ((a.n + m.B - 1) / m.B));
    fflush(stdout);

    double t0 = now_s();
    double *pi = ep_malloc((size_t)L * sizeof(double), "CEI scores");
    int *order = ep_malloc((size_t)L * sizeof(int), "CEI order"), *rank = ep_malloc((size_t)L * sizeof(int), "CEI ranks");
    cei_compute(&m, ds, a.n, deck.train.seed, pi);
    cei_rank(pi, L, order);
    ranks_of(order, L, rank);
    print_table(pi, rank, L);

    path_join(path, sizeof path, out, "cei.csv");
    write_csv(path, pi, rank, L);
    path_join(path, sizeof path, out, "cei.png");
    write_chart(path, pi, rank, L);
    ckpt_write_cei(a.ckpt, pi, order, L);
    printf("wrote %s/cei.csv, %s/cei.png and /schedule/{cei,order} in %s (%.1f s)\n", out, out, a.ckpt, now_s() - t0);

    free(pi), free(order), free(rank);
    dataset_close(ds);
    model_destroy(&m);
    deck_free(&deck);
    return 0;
}
