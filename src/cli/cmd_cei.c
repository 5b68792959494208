/* entprog cei <deck> --ckpt CKPT [--n N] [--out DIR]
 * CEI scores of the blocks of a checkpoint on N probe tuples of the deck's
 * training set (cei.h), printed as a table, written as <out>/cei.csv and a
 * bar chart <out>/cei.png, and stored in the checkpoint as /schedule/cei
 * and /schedule/order. */
#define _POSIX_C_SOURCE 200809L
#include "train/cei.h"
#include "io/ckpt_schedule.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/infer_model.h"
#include "core/clock.h"
#include "core/paths.h"
#include "deck/deck.h"
#include "core/die.h"
#include "media/png_write.h"
#include "media/raster.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CEI_DEFAULT_N 1000
#define CHART_W 640
#define CHART_H 360
#define CHART_MARGIN 24

typedef struct {
    const char *deck, *ckpt, *out;
    int n;
} CeiArgs;

/* 0 when --help was asked for. */
static int parse_args(int argc, char **argv, CeiArgs *a) {
    *a = (CeiArgs){.n = CEI_DEFAULT_N};
    const ArgOpt opts[] = {
        {"--ckpt", ARG_STR, &a->ckpt, .required = 1, .what = "the checkpoint whose blocks to score"},
        {"--n", ARG_INT, &a->n, 1, INT_MAX, .what = "probe tuples (default 1000)"},
        {"--out", ARG_STR, &a->out, .what = "folder for cei.csv and cei.png (default: the checkpoint's)"},
    };
    ArgSpec spec = {"cei", &a->deck, opts, sizeof opts / sizeof *opts, NULL};
    return args_parse(&spec, argc, argv);
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
    int partial = ep_partial_begin(path); /* removed if writing it fails */
    fprintf(fp, "block,pi,rank\n");
    for (int b = 0; b < L; b++) fprintf(fp, "%d,%.17g,%d\n", b, pi[b], rank[b]);
    if (fclose(fp) != 0) ep_die("cei: cannot finish writing '%s': %s", path, strerror(errno));
    ep_partial_done(partial);
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

static void print_table(const double *pi, const int *rank, int L) {
    printf("%6s %14s %5s\n", "block", "pi(b)", "rank");
    for (int b = 0; b < L; b++) printf("%6d %14.6g %5d\n", b, pi[b], rank[b]);
}

int cmd_cei(int argc, char **argv) {
    CeiArgs a;
    if (!parse_args(argc, argv, &a)) return 0;
    int world = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world > 1) ep_die("cei: runs on one rank (started on %d)", world);
    infer_check_readable("cei", "--ckpt", a.ckpt); /* before the deck: a wrong path is the likelier mistake */
    Deck deck;
    deck_load(&deck, a.deck);
    int L = deck.model.L;
    Model m; /* CEI needs forward passes only */
    InferSpec spec = {"cei", "--ckpt", a.ckpt, deck.train.backend, .B = deck.train.batch, .F = deck.model.F};
    infer_model_load(&m, &deck.model, &spec);
    char path[DECK_PATH_MAX + 64], out[DECK_PATH_MAX + 64];
    path_join(path, sizeof path, deck.data.dir, "train.h5");
    Dataset *ds = dataset_open(path, &deck.model, deck.data.frame_stride);
    if (a.out) snprintf(out, sizeof out, "%s", a.out);
    else folder_of(a.ckpt, out, sizeof out);
    path_mkdirs(out, "--out");
    printf("entprog cei: %s, %d probe tuples from %s (seed %llu), batch %d, %d forward passes\n", a.ckpt, a.n, path,
           (unsigned long long)deck.train.seed, m.B, (L + 1) * ((a.n + m.B - 1) / m.B));
    fflush(stdout);

    double t0 = clock_s();
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
    printf("wrote %s/cei.csv, %s/cei.png and /schedule/{cei,order} in %s (%.1f s)\n", out, out, a.ckpt, clock_s() - t0);

    free(pi), free(order), free(rank);
    dataset_close(ds);
    model_destroy(&m);
    deck_free(&deck);
    return 0;
}
