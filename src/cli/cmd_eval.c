/* entprog eval --samples DIR/samples.h5 [--out FILE.json]
 * SSIM, PSNR, L1 and temporal measures of /generated_frames against
 * /ground_truth_frames (eval_metrics.h), per sample and averaged over the
 * samples: a printed table, FILE.json and FILE.csv (docs/sampling.md). */
#define _POSIX_C_SOURCE 200809L
#include "cli/args.h"
#include "cli/commands.h"
#include "core/die.h"
#include "sample/eval_metrics.h"
#include "io/h5util.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_PATH_MAX 1024

typedef struct {
    const char *samples, *out;
} EvalArgs;

/* 0 when --help was asked for. */
static int parse_args(int argc, char **argv, EvalArgs *a) {
    *a = (EvalArgs){0};
    const ArgOpt opts[] = {
        {"--samples", ARG_STR, &a->samples, .required = 1, .what = "samples.h5 written by entprog sample"},
        {"--out", ARG_STR, &a->out, .what = "FILE.json, and FILE.csv beside it (default: eval.json next to --samples)"},
    };
    ArgSpec spec = {"eval", NULL, opts, sizeof opts / sizeof *opts, NULL};
    return args_parse(&spec, argc, argv);
}

typedef struct {
    int N, F, H, W;
    uint8_t *gen, *truth;   /* [N,F,3,H,W] */
    int32_t *video;         /* [N] */
    char *checkpoint;       /* attributes, "" when absent */
    double steps, eta, guidance;
} SampleFile;

static double attr_or_nan(hid_t f, const char *path, const char *name) {
    return h5_has_attr(f, "/", name) ? h5_get_attr_double(f, path, "/", name) : NAN;
}

static void read_samples(const char *path, SampleFile *s) {
    hid_t f = h5_open_read(path, MPI_COMM_NULL);
    hsize_t d[8], t[8];
    if (h5_dims(f, path, "/generated_frames", d, 8) != 5 || d[2] != 3)
        ep_die("eval: '%s': /generated_frames must be [N,F,3,H,W] uint8", path);
    if (h5_dims(f, path, "/ground_truth_frames", t, 8) != 5 || memcmp(d, t, 5 * sizeof *d))
        ep_die("eval: '%s': /ground_truth_frames must have the shape of /generated_frames", path);
    if (d[0] < 1 || d[1] < 1 || d[3] < 1 || d[4] < 1) ep_die("eval: '%s' holds no frames", path);
    s->N = (int)d[0], s->F = (int)d[1], s->H = (int)d[3], s->W = (int)d[4];
    size_t n = (size_t)d[0] * d[1] * d[2] * d[3] * d[4];
    s->gen = ep_malloc(n, "generated frames");
    s->truth = ep_malloc(n, "ground-truth frames");
    h5_read_u8(f, path, "/generated_frames", s->gen, 5, d);
    h5_read_u8(f, path, "/ground_truth_frames", s->truth, 5, d);
    s->video = ep_malloc((size_t)s->N * sizeof(int32_t), "video indices");
    if (h5_exists(f, "/video")) h5_read_i32(f, path, "/video", s->video, 1, d);
    else
        for (int i = 0; i < s->N; i++) s->video[i] = i;
    s->checkpoint = h5_has_attr(f, "/", "checkpoint") ? h5_get_attr_str(f, path, "/", "checkpoint") : strdup("");
    s->steps = attr_or_nan(f, path, "steps");
    s->eta = attr_or_nan(f, path, "eta");
    s->guidance = attr_or_nan(f, path, "guidance");
    h5_close(f);
}

static void free_samples(SampleFile *s) { free(s->gen), free(s->truth), free(s->video), free(s->checkpoint); }

/* Means over samples; each sample weighs the same (every clip has F frames). */
static ClipMetrics mean_of(const ClipMetrics *m, int N) {
    ClipMetrics a = {0};
    for (int i = 0; i < N; i++) {
        a.ssim += m[i].ssim, a.psnr += m[i].psnr, a.l1 += m[i].l1;
        a.tdiff_gen += m[i].tdiff_gen, a.tdiff_gt += m[i].tdiff_gt, a.tdiff_err += m[i].tdiff_err;
    }
    a.ssim /= N, a.psnr /= N, a.l1 /= N, a.tdiff_gen /= N, a.tdiff_gt /= N, a.tdiff_err /= N;
    return a;
}

/* A number for JSON: "inf" for +infinity (JSON has none), null for NaN (not defined, F = 1). */
static void json_num(FILE *fp, double v) {
    if (isnan(v)) fprintf(fp, "null");
    else if (isinf(v)) fprintf(fp, v > 0 ? "\"inf\"" : "\"-inf\"");
    else fprintf(fp, "%.10g", v);
}

/* The same for CSV: inf, or empty for NaN. */
static void csv_num(FILE *fp, double v) {
    if (isnan(v)) return;
    if (isinf(v)) fprintf(fp, v > 0 ? "inf" : "-inf");
    else fprintf(fp, "%.10g", v);
}

static void json_metrics(FILE *fp, const ClipMetrics *m) {
    const char *names[6] = {"ssim", "psnr", "l1", "tdiff_gen", "tdiff_gt", "tdiff_err"};
    const double v[6] = {m->ssim, m->psnr, m->l1, m->tdiff_gen, m->tdiff_gt, m->tdiff_err};
    for (int k = 0; k < 6; k++) {
        fprintf(fp, "%s\"%s\": ", k ? ", " : "", names[k]);
        json_num(fp, v[k]);
    }
}

/* A JSON string of plain text: quotes, backslashes and control bytes escaped. */
static void json_str(FILE *fp, const char *s) {
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(fp, "\\%c", c);
        else if (c < 0x20) fprintf(fp, "\\u%04x", c);
        else fputc(c, fp);
    }
    fputc('"', fp);
}

static void write_json(const char *path, const char *src, const SampleFile *s, const ClipMetrics *m,
                       const ClipMetrics *mean) {
    FILE *fp = fopen(path, "w");
    if (!fp) ep_die("eval: cannot write '%s': %s", path, strerror(errno));
    int partial = ep_partial_begin(path); /* removed if writing it fails */
    fprintf(fp, "{\n  \"samples\": ");
    json_str(fp, src);
    fprintf(fp, ",\n  \"checkpoint\": ");
    json_str(fp, s->checkpoint);
    fprintf(fp, ",\n  \"steps\": ");
    json_num(fp, s->steps);
    fprintf(fp, ", \"eta\": ");
    json_num(fp, s->eta);
    fprintf(fp, ", \"guidance\": ");
    json_num(fp, s->guidance);
    fprintf(fp, ",\n  \"n\": %d, \"frames\": %d, \"height\": %d, \"width\": %d,\n  \"mean\": {", s->N, s->F, s->H, s->W);
    json_metrics(fp, mean);
    fprintf(fp, "},\n  \"per_sample\": [\n");
    for (int i = 0; i < s->N; i++) {
        fprintf(fp, "    {\"sample\": %d, \"video\": %d, ", i, (int)s->video[i]);
        json_metrics(fp, m + i);
        fprintf(fp, "}%s\n", i + 1 < s->N ? "," : "");
    }
    fprintf(fp, "  ]\n}\n");
    if (fclose(fp) != 0) ep_die("eval: cannot finish writing '%s': %s", path, strerror(errno));
    ep_partial_done(partial);
}

static void csv_row(FILE *fp, const char *label, int video, const ClipMetrics *m) {
    fprintf(fp, "%s,", label);
    if (video >= 0) fprintf(fp, "%d", video);
    const double v[6] = {m->ssim, m->psnr, m->l1, m->tdiff_gen, m->tdiff_gt, m->tdiff_err};
    for (int k = 0; k < 6; k++) {
        fputc(',', fp);
        csv_num(fp, v[k]);
    }
    fputc('\n', fp);
}

static void write_csv(const char *path, const SampleFile *s, const ClipMetrics *m, const ClipMetrics *mean) {
    FILE *fp = fopen(path, "w");
    if (!fp) ep_die("eval: cannot write '%s': %s", path, strerror(errno));
    int partial = ep_partial_begin(path); /* removed if writing it fails */
    fprintf(fp, "sample,video,ssim,psnr,l1,tdiff_gen,tdiff_gt,tdiff_err\n");
    for (int i = 0; i < s->N; i++) {
        char label[16];
        snprintf(label, sizeof label, "%d", i);
        csv_row(fp, label, s->video[i], m + i);
    }
    csv_row(fp, "mean", -1, mean);
    if (fclose(fp) != 0) ep_die("eval: cannot finish writing '%s': %s", path, strerror(errno));
    ep_partial_done(partial);
}

static void print_row(const char *label, const ClipMetrics *m) {
    printf("%8s %8.4f %9.3f %8.4f %10.4f %10.4f %10.4f\n", label, m->ssim, m->psnr, m->l1, m->tdiff_gen, m->tdiff_gt,
           m->tdiff_err);
}

/* FILE.json and FILE.csv: --out, or eval.json next to the samples file. */
static void out_paths(const EvalArgs *a, char *json, char *csv) {
    if (a->out) snprintf(json, EVAL_PATH_MAX, "%s", a->out);
    else {
        const char *slash = strrchr(a->samples, '/');
        if (slash) snprintf(json, EVAL_PATH_MAX, "%.*s/eval.json", (int)(slash - a->samples), a->samples);
        else snprintf(json, EVAL_PATH_MAX, "eval.json");
    }
    size_t n = strlen(json);
    if (n >= EVAL_PATH_MAX - 5) ep_die("eval: --out '%s' is too long", json);
    snprintf(csv, EVAL_PATH_MAX, "%s", json);
    if (n > 5 && !strcmp(json + n - 5, ".json")) strcpy(csv + n - 5, ".csv");
    else strcat(csv, ".csv");
}

int cmd_eval(int argc, char **argv) {
    EvalArgs a;
    if (!parse_args(argc, argv, &a)) return 0;
    int world = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world > 1) ep_die("eval: runs on one rank (started on %d)", world);
    SampleFile s;
    read_samples(a.samples, &s);
    char json[EVAL_PATH_MAX], csv[EVAL_PATH_MAX];
    out_paths(&a, json, csv);
    ClipMetrics *m = ep_malloc((size_t)s.N * sizeof *m, "metrics");
    size_t clip = (size_t)s.F * 3 * s.H * s.W;
    printf("entprog eval: %s, %d samples of %d frames, %dx%d\n", a.samples, s.N, s.F, s.H, s.W);
    printf("%8s %8s %9s %8s %10s %10s %10s\n", "sample", "SSIM", "PSNR dB", "L1", "tdiff_gen", "tdiff_gt", "tdiff_err");
    for (int i = 0; i < s.N; i++) {
        metric_clip(s.gen + i * clip, s.truth + i * clip, s.F, s.H, s.W, m + i);
        char label[16];
        snprintf(label, sizeof label, "%d", i);
        print_row(label, m + i);
    }
    ClipMetrics mean = mean_of(m, s.N);
    print_row("mean", &mean);
    write_json(json, a.samples, &s, m, &mean);
    write_csv(csv, &s, m, &mean);
    printf("wrote %s and %s\n", json, csv);
    free(m);
    free_samples(&s);
    return 0;
}
