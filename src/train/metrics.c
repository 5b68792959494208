#include "train/metrics.h"
#include <string.h>

/* name | printf format | meaning. The first column, kind, is train, search
 * (a step inside an Ent-Prog search window), val, or probe (the CE probe
 * loss measured in a search: loss, m and cost; src/train/stages.c). */
static const struct {
    const char *name, *fmt, *meaning;
} COLUMNS[MC_COUNT] = {
    [MC_STEP] = {"step", "%.0f", "optimizer steps done (the row's step is complete)"},
    [MC_LOSS] = {"loss", "%.17g", "batch epsilon-MSE averaged over ranks (val: mean over the fixed validation set, EMA weights when kept; probe: over the CE probe set)"},
    [MC_GRAD_NORM] = {"grad_norm", "%.6g", "global gradient norm before clipping"},
    [MC_LR] = {"lr", "%.6g", "learning rate of the step"},
    [MC_MS_PER_STEP] = {"ms_per_step", "%.3f", "wall time of the step, ms"},
    [MC_SAMPLES_PER_S] = {"samples_per_s", "%.3f", "clips per second over all ranks"},
    [MC_PEAK_RSS_MIB] = {"peak_rss_mib", "%.1f", "peak resident memory of rank 0's process, MiB"},
    [MC_STAGE] = {"stage", "%.0f", "Ent-Prog stage (0-based; -1 before the first)"},
    [MC_M] = {"m", "%.0f", "blocks that train (inside a search: the candidate of the step)"},
    [MC_MEM_PEAK_MIB] = {"mem_peak_mib", "%.1f", "backend allocator's peak since the stage began, MiB"},
    [MC_TRAIN_S] = {"train_s", "%.3f", "training wall time so far (steps, searches, probes), s"},
    [MC_COMM_MS] = {"comm_ms", "%.3f", "time the step spent exchanging gradients and parameters outside backward, ms"},
    [MC_COST] = {"cost", "%.17g", "probe rows: the cost CE divides by of the search step just taken (s, or the cost model's units)"},
    [MC_NUMERICS] = {"numerics", "%s", "the first row a process writes: the backend and the environment settings that change results"},
};

void metrics_set(MetricsRow *r, MetricsColumn c, double value) {
    r->v[c] = value;
    r->has[c] = 1;
}

void metrics_write_header(FILE *f) {
    fputs("kind", f);
    for (int c = 0; c < MC_COUNT; c++) fprintf(f, ",%s", COLUMNS[c].name);
    fputc('\n', f);
}

void metrics_write_row(FILE *f, const MetricsRow *r) {
    fputs(r->kind, f);
    for (int c = 0; c < MC_COUNT; c++) {
        fputc(',', f);
        if (r->text[c]) fputs(r->text[c], f); /* text columns hold no commas */
        else if (r->has[c]) fprintf(f, COLUMNS[c].fmt, r->v[c]);
    }
    fputc('\n', f);
}
