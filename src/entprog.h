/* Ent-Prog's schedule: which blocks train at each step of a fine-tune.
 * Methods (deck entprog.method): full (everything trains), entprog (CEI order,
 * adaptive m per stage), static (top static_m blocks by CEI), linear (CEI
 * order, m grows by equal steps: "w/o Ada."), random / depth (adaptive m with
 * a random or a deepest-first order: "w/o CEI"), temporal (only the temporal
 * attention of every block). m never shrinks. docs/entprog.md has the rules. */
#pragma once
#include <stdint.h>
#include "deck.h"
#include "model.h"

#define PROG_MAX_CAND 8
#define PROG_MAX_STAGES 64
#define PROG_ROW (3 + 2 * PROG_MAX_CAND) /* stage, first step, m*, then (m_i, CE_i) pairs */

typedef enum { PM_FULL, PM_ENTPROG, PM_STATIC, PM_LINEAR, PM_RANDOM, PM_DEPTH, PM_TEMPORAL } ProgMethod;

typedef struct {
    ProgMethod method;
    int L, K, steps;
    int adaptive;                 /* the method searches m at each stage start */
    int uses_cei;                 /* the order comes from CEI */
    int supernet;                 /* search form: 1 supernet, 0 independent trials */
    int train_inputs, window, reverse;
    int order[512];               /* blocks, first to unfreeze first (after entprog.reverse) */
    int ranking[512];             /* the CEI ranking as computed, highest pi first */
    double cei[512];
    int has_cei;
    int grid[512], n_grid, max_cand;
    /* progress (checkpointed) */
    int stage;                    /* current stage, -1 before the first */
    int m;                        /* blocks training now (outside a search window) */
    int searching;                /* inside a supernet window */
    long long search_end;         /* first step after the window */
    int n_cand, cand[PROG_MAX_CAND];
    double drop[PROG_MAX_CAND], cost[PROG_MAX_CAND], count[PROG_MAX_CAND];
    double probe_last;            /* probe loss before the next supernet step */
    double train_s;               /* training wall time so far (steps, search, probes) */
    int n_rows;
    double rows[PROG_MAX_STAGES][PROG_ROW];
} Prog;

/* From the deck; dies naming entprog.* keys that do not fit the model. */
void prog_init(Prog *p, const Deck *d);
/* Sets the block order (CEI ranking, or the method's own order). */
void prog_set_order(Prog *p, const double *cei, const int *order);
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
/* Records a decided stage. */
void prog_record(Prog *p, int stage, long long first_step, int m_star, const int *cand, const double *ce, int n);
/* A deterministic stand-in for a step's time, in units of one block's forward:
 * forward of every block, input-gradient of every block backward reaches,
 * weight-gradient of every trainable block (timing = cost). */
double prog_step_cost(const Model *model);
const char *prog_method_name(ProgMethod m);

/* Checkpoint form: the progress fields as one vector. */
#define PROG_STATE_LEN (8 + 4 * PROG_MAX_CAND)
void prog_pack(const Prog *p, double *v);
void prog_unpack(Prog *p, const double *v);
