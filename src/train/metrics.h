/* metrics.csv, the training log (docs/formats.md "Metrics"): its columns are
 * defined once, in the table of metrics.c; the header, every row, the docs'
 * column list and tools/plot_*.py follow it (tests/check_metrics_columns.py). */
#pragma once
#include <stdio.h>

typedef enum {
    MC_STEP, MC_LOSS, MC_GRAD_NORM, MC_LR, MC_MS_PER_STEP, MC_SAMPLES_PER_S, MC_PEAK_RSS_MIB,
    MC_STAGE, MC_M, MC_MEM_PEAK_MIB, MC_TRAIN_S, MC_COMM_MS, MC_COST, MC_NUMERICS,
    MC_COUNT /* the columns after `kind` */
} MetricsColumn;

typedef struct {
    const char *kind;         /* train | search | val | probe */
    double v[MC_COUNT];
    unsigned char has[MC_COUNT]; /* 0: the column is empty in this row */
    const char *text[MC_COUNT];  /* a text column's value (NULL: empty) */
} MetricsRow;

/* Sets column c of the row. */
void metrics_set(MetricsRow *r, MetricsColumn c, double value);
/* The header line (kind first). */
void metrics_write_header(FILE *f);
void metrics_write_row(FILE *f, const MetricsRow *r);
