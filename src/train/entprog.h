/* Ent-Prog's schedule: which blocks train at each step of a fine-tune, and
 * the state of the stage search. The methods (entprog.method) are the table
 * in src/deck/methods.h; this file carries out its columns: the block order,
 * m per stage (fixed, or searched by CE(m) = probe-loss drop / cost), what
 * trains. m never shrinks. docs/entprog.md has the rules.
 *
 * Prog's fields are read by the stage code (src/train/stages.c) but written
 * only here, and only here is its checkpoint form (named /schedule datasets,
 * docs/formats.md). */
#pragma once
#include <stdint.h>
#include "core/limits.h"
#include "core/rng.h"
#include "deck/deck.h"
#include "deck/methods.h"
#include "io/checkpoint.h"
#include "model/model.h"

#define PROG_MAX_CAND 8
#define PROG_MAX_STAGES 64
#define PROG_ROW (3 + 2 * PROG_MAX_CAND) /* stage, first step, m*, then (m_i, CE_i) pairs */

/* The progress record as checkpoint format 2 stored it before issue 11: one
 * positional vector /schedule/progress [1, PROG_STATE_LEN]; still read. */
#define PROG_STATE_LEN (8 + 4 * PROG_MAX_CAND)

typedef struct {
    const ProgMethod *method;     /* its row of the method table */
    int L, K, steps;
    int adaptive;                 /* method->schedule == SCHED_ADAPTIVE */
    int uses_cei;                 /* method->order == ORDER_CEI */
    int supernet;                 /* search form: 1 supernet, 0 independent trials */
    int train_inputs, window, reverse;
    int window_epoch;             /* entprog.search_steps = 0: the window is one epoch (prog_set_data) */
    int balanced;                 /* entprog.sampling = balanced: draw among the least-sampled candidates */
    int probe_videos;             /* training videos held out as the CE probe set (0: the validation split) */
    int order[EP_MAX_BLOCKS];     /* blocks, first to unfreeze first (after entprog.reverse) */
    int ranking[EP_MAX_BLOCKS];   /* the CEI ranking as computed, highest pi first */
    double cei[EP_MAX_BLOCKS];
    int has_cei;
    int grid[EP_MAX_BLOCKS], n_grid, max_cand;
    /* progress (checkpointed) */
    int stage;                    /* current stage, -1 before the first */
    int m;                        /* blocks training now (the sampled candidate inside a window) */
    int searching;                /* inside a supernet window */
    long long search_end;         /* first step after the window */
    int n_cand, cand[PROG_MAX_CAND];
    double drop[PROG_MAX_CAND], cost[PROG_MAX_CAND], count[PROG_MAX_CAND];
    double drop2[PROG_MAX_CAND], cost2[PROG_MAX_CAND], dropcost[PROG_MAX_CAND]; /* sums of squares and
                                     products of the per-step drops and costs: CE's standard error */
    double probe_last;            /* probe loss before the next supernet step */
    double train_s;               /* training wall time so far (steps, search, probes) */
    int n_rows;
    double rows[PROG_MAX_STAGES][PROG_ROW];
    double se_rows[PROG_MAX_STAGES][PROG_MAX_CAND]; /* CE's standard error per candidate of each row (NaN: none) */
    /* float64 staging of the checkpoint form (CkptArray holds doubles) */
    double io_order[EP_MAX_BLOCKS], io_train_order[EP_MAX_BLOCKS], io_scalar[8], io_cand[PROG_MAX_CAND],
        io_legacy[PROG_STATE_LEN];
} Prog;

/* From the deck; dies naming entprog.* keys that do not fit the model. */
void prog_init(Prog *p, const Deck *d);
/* Records the CEI scores and ranking; the block order follows the ranking
 * only for methods whose order is CEI's (random and depth keep their own). */
void prog_set_order(Prog *p, const double *cei, const int *order);
/* Training videos held out from the training split as the CE probe set for
 * this deck's method (0: it has no search, or entprog.probe_videos = 0). */
int prog_probe_holdout(const Deck *d, int train_videos);
/* With the training split's size known: an epoch-long window (search_steps
 * = 0) is ceil(videos / global batch) steps; dies when a window does not fit
 * in half a stage. */
void prog_set_data(Prog *p, int train_videos, int global_batch);
/* CE = sum of drops / sum of costs and its standard error (the ratio
 * estimator's, over the n >= 2 steps; NaN below) from the sums kept per candidate. */
void prog_ce(const Prog *p, int c, double *ce, double *se);
/* First step of stage k (k = K: the end). */
long long prog_stage_start(const Prog *p, int k);
/* The stage a step belongs to. */
int prog_stage_of(const Prog *p, long long step);
/* Candidate counts for stage k given the current m (m never shrinks). */
int prog_candidates(const Prog *p, int k, int m_now, int *cand);
/* m for a non-adaptive method at stage k. */
int prog_fixed_m(const Prog *p, int k);
/* Trainable tensors when the top-m blocks of the order train (m ignored by full / temporal). */
void prog_mask(const Prog *p, const Model *model, int m, uint8_t *mask);
/* CE(m) = loss drop / cost; the winner: the highest CE, ties to the smaller m. */
int prog_pick(const Prog *p, const double *ce);
/* A deterministic stand-in for a step's time, in units of one block's forward:
 * forward of every block, input-gradient of every block backward reaches,
 * weight-gradient of every trainable block (timing = cost). */
double prog_step_cost(const Model *model);
const char *prog_method_name(const Prog *p);

/* ---- the stage machine (driven by src/train/stages.c) ---- */

typedef enum {
    STAGE_NONE,     /* no stage begins at this step */
    STAGE_FIXED,    /* a stage began with its m decided (p->m) */
    STAGE_SUPERNET, /* a supernet window began: the caller measures the probe loss (prog_supernet_begin) */
    STAGE_TRIALS,   /* an independent-trials search over p->cand must run now */
} StageStart;

/* At the start of a step: begins stage k when step is its first (records a fixed m). */
StageStart prog_stage_begin(Prog *p, long long step);
/* The largest candidate: the trainable set whose memory a search window holds. */
int prog_window_m(const Prog *p);
void prog_supernet_begin(Prog *p, double probe_loss);
/* This step's candidate, drawn i.i.d. uniformly over the candidates (the
 * paper's), or with sampling = balanced uniformly among those sampled least
 * so far; sets p->m. */
int prog_supernet_draw(Prog *p, Rng *rng);
/* After a window step of p->m that cost `cost`, with the probe loss now:
 * accounts it; at the window's end (step_after = search_end) decides m*,
 * records the stage, writes CE(m) to ce and returns 1. */
int prog_supernet_account(Prog *p, double probe_loss, double cost, long long step_after, double *ce, double *se);
/* A trials search ended with CE(m) of every candidate: m* = the winner's (returned as its index). */
int prog_trials_decide(Prog *p, const double *ce, long long first_step);
/* A trials rank group trains candidate c now (p->m, for the log). */
void prog_trials_candidate(Prog *p, int c);
/* A trials search was abandoned (the run stops inside it): back to before stage `stage`, m = m_before. */
void prog_trials_abandon(Prog *p, int stage, int m_before);
/* Wall time spent training (steps, search, probes). */
void prog_spend(Prog *p, double seconds);

/* ---- checkpoint form ----
 * /schedule/cei, /schedule/order: the CEI ranking; /schedule/stages: one row
 * per decided stage; /schedule/state/<name>: the progress by name. prog_ckpt_add
 * appends them to s (with_progress = 0: the ranking only, for train.init);
 * after ckpt_load, prog_ckpt_take reads them back (a file of the previous
 * form, /schedule/progress, too). */
void prog_ckpt_add(Prog *p, CkptState *s, int with_progress);
void prog_ckpt_take(Prog *p, const CkptState *s, int with_progress);
