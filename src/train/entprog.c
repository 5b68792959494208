#include "train/entprog.h"
#include "core/die.h"
#include "core/rng.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *prog_method_name(const Prog *p) { return p->method->name; }

/* "2,3,4,6" -> increasing block counts within 1..L; dies naming the key. */
static int parse_grid(const char *text, int L, int *grid) {
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > L)
            ep_die("entprog.grid = '%s': each entry must be a block count in 1..%d", text, L);
        if (n > 0 && v <= grid[n - 1]) ep_die("entprog.grid = '%s': counts must increase", text);
        grid[n++] = (int)v;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) ep_die("entprog.grid = '%s': expected comma-separated integers", text);
        while (*p == ' ') p++;
    }
    return n;
}

void prog_init(Prog *p, const Deck *d) {
    memset(p, 0, sizeof *p);
    const ProgConfig *g = &d->prog;
    p->L = d->model.L;
    if (p->L > EP_MAX_BLOCKS) ep_die("entprog: model.L = %d blocks is more than the %d supported", p->L, EP_MAX_BLOCKS);
    p->method = prog_method_find(g->method);
    if (!p->method) ep_die("entprog.method = '%s': expected one of %s", g->method, prog_method_choices());
    p->steps = d->train.steps;
    MethodSchedule sched = p->method->schedule;
    p->K = sched == SCHED_ALL || sched == SCHED_STATIC ? 1 : g->stages;
    if (p->K > PROG_MAX_STAGES) ep_die("entprog.stages = %d: at most %d", g->stages, PROG_MAX_STAGES);
    p->adaptive = sched == SCHED_ADAPTIVE;
    p->uses_cei = p->method->order == ORDER_CEI;
    p->supernet = !strcmp(g->search, "supernet");
    p->train_inputs = g->train_inputs;
    p->reverse = g->reverse;
    p->window = g->search_steps;
    p->window_epoch = g->search_steps == 0;
    p->balanced = !strcmp(g->sampling, "balanced");
    p->probe_videos = g->probe_videos;
    p->max_cand = g->max_candidates;
    if (p->max_cand > PROG_MAX_CAND) ep_die("entprog.max_candidates = %d: at most %d", p->max_cand, PROG_MAX_CAND);
    if (g->grid[0]) {
        p->n_grid = parse_grid(g->grid, p->L, p->grid);
    } else { /* ceil(L j / K), j = 1..K, without repeats */
        for (int j = 1; j <= g->stages; j++) {
            int v = (p->L * j + g->stages - 1) / g->stages;
            if (p->n_grid == 0 || v > p->grid[p->n_grid - 1]) p->grid[p->n_grid++] = v;
        }
    }
    if (p->adaptive && !p->window_epoch && p->window * 2 > p->steps / p->K)
        ep_die("entprog.search_steps = %d: the search window must fit in half a stage (%d steps / %d stages)",
               p->window, p->steps, p->K);
    /* orders that do not come from CEI */
    for (int b = 0; b < p->L; b++) p->order[b] = p->method->order == ORDER_DEPTH ? p->L - 1 - b : b;
    if (p->method->order == ORDER_RANDOM) {
        Rng r;
        rng_seed_stream(&r, g->seed, 21);
        for (int i = p->L - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint32_t)(i + 1)), t = p->order[i];
            p->order[i] = p->order[j];
            p->order[j] = t;
        }
    }
    if (p->reverse)
        for (int i = 0; i < p->L / 2; i++) {
            int t = p->order[i];
            p->order[i] = p->order[p->L - 1 - i];
            p->order[p->L - 1 - i] = t;
        }
    p->stage = -1;
    p->m = sched == SCHED_STATIC ? (g->static_m ? g->static_m : (p->L + 1) / 2) : 0;
}

void prog_set_order(Prog *p, const double *cei, const int *order) {
    memcpy(p->cei, cei, p->L * sizeof(double));
    memcpy(p->ranking, order, p->L * sizeof(int));
    if (p->uses_cei) /* random and depth ("w/o CEI") must never take it */
        for (int i = 0; i < p->L; i++) p->order[i] = order[p->reverse ? p->L - 1 - i : i];
    p->has_cei = 1;
}

int prog_probe_holdout(const Deck *d, int train_videos) {
    const ProgMethod *method = prog_method_find(d->prog.method);
    if (!method || method->schedule != SCHED_ADAPTIVE || d->prog.probe_videos == 0) return 0;
    if (d->prog.probe_videos >= train_videos)
        ep_die("entprog.probe_videos = %d: the training split has only %d videos, some must remain to train on",
               d->prog.probe_videos, train_videos);
    return d->prog.probe_videos;
}

void prog_set_data(Prog *p, int train_videos, int global_batch) {
    if (!p->window_epoch) return;
    p->window = (train_videos + global_batch - 1) / global_batch;
    if (p->adaptive && p->window * 2 > p->steps / p->K)
        ep_die("entprog.search_steps = 0: one epoch (%d training videos / %d clips per step = %d steps) does not fit "
               "in half a stage (%d steps / %d stages); set entprog.search_steps to a window that does",
               train_videos, global_batch, p->window, p->steps, p->K);
}

long long prog_stage_start(const Prog *p, int k) { return (long long)p->steps * k / p->K; }

int prog_stage_of(const Prog *p, long long step) {
    int k = 0;
    while (k + 1 < p->K && step >= prog_stage_start(p, k + 1)) k++;
    return k;
}

int prog_candidates(const Prog *p, int k, int m_now, int *cand) {
    int n = 0;
    if (k == 0) m_now = p->grid[0];
    for (int i = 0; i < p->n_grid && n < p->max_cand; i++)
        if (p->grid[i] >= m_now) cand[n++] = p->grid[i];
    if (n == 0) cand[n++] = m_now; /* already at the top of the grid */
    return n;
}

int prog_fixed_m(const Prog *p, int k) {
    if (p->method->schedule == SCHED_LINEAR) return (p->L * (k + 1) + p->K - 1) / p->K;
    if (p->method->schedule == SCHED_STATIC) return p->m;
    return p->L;
}

void prog_mask(const Prog *p, const Model *model, int m, uint8_t *mask) {
    const ParamTable *pt = &model->pt;
    memset(mask, 0, pt->n);
    if (p->method->trains == TRAINS_ALL) {
        memset(mask, 1, pt->n);
        return;
    }
    if (p->method->trains == TRAINS_TEMPORAL) { /* the temporal attention and its modulation rows of ada */
        for (int b = 0; b < p->L; b++) {
            for (int k = BP_TQKV_W; k <= BP_TPROJ_B; k++) mask[pt->blk0 + b * BP_COUNT + k] = 1;
            mask[pt->blk0 + b * BP_COUNT + BP_ADA_W] = mask[pt->blk0 + b * BP_COUNT + BP_ADA_B] = TRAIN_TEMPORAL_ROWS;
        }
        return;
    }
    for (int j = 0; j < m && j < p->L; j++)
        for (int k = 0; k < BP_COUNT; k++) mask[pt->blk0 + p->order[j] * BP_COUNT + k] = 1;
    for (int i = pt->f_ada_w; i <= pt->f_lin_b; i++) mask[i] = 1; /* the output layer always trains */
    if (p->train_inputs)
        for (int i = 0; i < pt->blk0; i++) mask[i] = 1;
}

int prog_pick(const Prog *p, const double *ce) {
    int best = 0;
    for (int i = 1; i < p->n_cand; i++)
        if (ce[i] > ce[best]) best = i; /* candidates increase, so ties keep the smaller m */
    return best;
}

static void prog_record(Prog *p, int stage, long long first_step, int m_star, const int *cand, const double *ce,
                        const double *se, int n) {
    if (p->n_rows >= PROG_MAX_STAGES) return;
    double *se_row = p->se_rows[p->n_rows];
    double *r = p->rows[p->n_rows++];
    for (int i = 0; i < PROG_ROW; i++) r[i] = NAN;
    for (int i = 0; i < PROG_MAX_CAND; i++) se_row[i] = NAN;
    r[0] = stage, r[1] = (double)first_step, r[2] = m_star;
    for (int i = 0; i < n; i++) r[3 + 2 * i] = cand[i], r[4 + 2 * i] = ce ? ce[i] : NAN, se_row[i] = se ? se[i] : NAN;
}

void prog_ce(const Prog *p, int c, double *ce, double *se) {
    double n = p->count[c], d = p->drop[c], k = p->cost[c];
    *ce = n > 0 && k > 0 ? d / k : -INFINITY;
    *se = NAN;
    if (n < 2 || !(k > 0)) return;
    /* ratio estimator: Var(sum d / sum c) ~ n/(n-1) sum (d_i - CE c_i)^2 / (sum c)^2 */
    double r = *ce, ss = p->drop2[c] - 2 * r * p->dropcost[c] + r * r * p->cost2[c];
    *se = isnan(ss) ? NAN : sqrt(n / (n - 1) * (ss > 0 ? ss : 0)) / k; /* NaN: sums lost (an older checkpoint) */
}

double prog_step_cost(const Model *model) {
    int L = model->shape.L, trainable = 0;
    for (int b = 0; b < L; b++) {
        int any = 0;
        for (int k = 0; k < BP_COUNT; k++) any |= model->trainable[model->pt.blk0 + b * BP_COUNT + k];
        trainable += any;
    }
    /* backward's input gradients cost about one forward, weight gradients another */
    return (double)L + (double)(L - model->first_bwd) + (double)trainable;
}

/* ---- the stage machine ---- */

StageStart prog_stage_begin(Prog *p, long long step) {
    int k = prog_stage_of(p, step);
    if (k <= p->stage) return STAGE_NONE;
    p->stage = k;
    if (!p->adaptive) {
        MethodSchedule sched = p->method->schedule;
        p->m = prog_fixed_m(p, k);
        p->n_cand = 0;
        prog_record(p, k, step, p->m, &p->m, NULL, NULL, sched == SCHED_LINEAR || sched == SCHED_STATIC);
        return STAGE_FIXED;
    }
    p->n_cand = prog_candidates(p, k, p->m, p->cand);
    if (p->n_cand == 1) {
        p->m = p->cand[0];
        prog_record(p, k, step, p->m, p->cand, NULL, NULL, 1);
        return STAGE_FIXED;
    }
    if (!p->supernet) return STAGE_TRIALS;
    p->searching = 1;
    p->search_end = step + p->window;
    for (int c = 0; c < PROG_MAX_CAND; c++)
        p->drop[c] = p->cost[c] = p->count[c] = p->drop2[c] = p->cost2[c] = p->dropcost[c] = 0;
    return STAGE_SUPERNET;
}

int prog_window_m(const Prog *p) { return p->cand[p->n_cand - 1]; }

void prog_supernet_begin(Prog *p, double probe_loss) { p->probe_last = probe_loss; }

int prog_supernet_draw(Prog *p, Rng *rng) {
    if (!p->balanced) { /* i.i.d. uniform, as the paper samples m at each step */
        p->m = p->cand[rng_below(rng, (uint32_t)p->n_cand)];
        return p->m;
    }
    /* balanced: uniform among the candidates sampled least so far, so every
     * candidate gets its share of a short window */
    double least = p->count[0];
    for (int i = 1; i < p->n_cand; i++) least = p->count[i] < least ? p->count[i] : least;
    int pool[PROG_MAX_CAND], n = 0;
    for (int i = 0; i < p->n_cand; i++)
        if (p->count[i] == least) pool[n++] = i;
    p->m = p->cand[pool[rng_below(rng, (uint32_t)n)]];
    return p->m;
}

int prog_supernet_account(Prog *p, double probe_loss, double cost, long long step_after, double *ce, double *se) {
    int c = 0;
    while (p->cand[c] != p->m) c++;
    double d = p->probe_last - probe_loss;
    p->drop[c] += d;
    p->cost[c] += cost;
    p->count[c] += 1;
    p->drop2[c] += d * d, p->cost2[c] += cost * cost, p->dropcost[c] += d * cost;
    p->probe_last = probe_loss;
    if (step_after < p->search_end) return 0;
    for (int i = 0; i < p->n_cand; i++) prog_ce(p, i, &ce[i], &se[i]);
    int win = prog_pick(p, ce);
    p->searching = 0;
    p->m = p->cand[win];
    prog_record(p, p->stage, p->search_end - p->window, p->m, p->cand, ce, se, p->n_cand);
    return 1;
}

int prog_trials_decide(Prog *p, const double *ce, long long first_step) {
    int win = 0;
    for (int c = 1; c < p->n_cand; c++)
        if (ce[c] > ce[win]) win = c;
    p->m = p->cand[win];
    prog_record(p, p->stage, first_step, p->m, p->cand, ce, NULL, p->n_cand); /* one measurement each: no SE */
    return win;
}

void prog_trials_abandon(Prog *p, int stage, int m_before) {
    p->stage = stage - 1;
    p->m = m_before;
    p->n_cand = 0;
}

void prog_trials_candidate(Prog *p, int c) { p->m = p->cand[c]; }

void prog_spend(Prog *p, double seconds) { p->train_s += seconds; }

/* ---- checkpoint form ---- */

/* The progress scalars, by name: /schedule/state/<name> float64 [1]. */
static const char *SCALARS[] = {"stage", "m", "searching", "search_end", "n_cand", "probe_last", "train_s"};
#define N_SCALARS ((int)(sizeof SCALARS / sizeof SCALARS[0]))
/* The per-candidate vectors: /schedule/state/<name> float64 [PROG_MAX_CAND].
 * The first N_REQUIRED were there from the start; the sums for CE's
 * standard error came later (issue 15) and read as 0 from older files. */
static const char *VECTORS[] = {"cand", "drop", "cost", "count", "drop2", "cost2", "dropcost"};
#define N_VECTORS ((int)(sizeof VECTORS / sizeof VECTORS[0]))
#define N_REQUIRED 4

static double *vector_of(Prog *p, int i) {
    double *v[N_VECTORS] = {p->io_cand, p->drop, p->cost, p->count, p->drop2, p->cost2, p->dropcost};
    return v[i];
}

static const CkptArray *find_array(const CkptState *s, const char *name) {
    for (int a = 0; a < s->n_arrays; a++)
        if (!strcmp(s->arrays[a].name, name)) return &s->arrays[a];
    return NULL;
}

static void add(CkptState *s, CkptArray a) {
    if (s->n_arrays >= CKPT_MAX_ARRAYS) ep_die("internal: more than %d /schedule datasets", CKPT_MAX_ARRAYS);
    s->arrays[s->n_arrays++] = a;
}

void prog_ckpt_add(Prog *p, CkptState *s, int with_progress) {
    int L = p->L;
    for (int b = 0; b < L; b++) p->io_order[b] = p->ranking[b];
    add(s, (CkptArray){"cei", p->cei, p->has_cei ? L : 0, 0, L, 0});
    add(s, (CkptArray){"order", p->io_order, p->has_cei ? L : 0, 0, L, 1});
    if (!with_progress) return;
    add(s, (CkptArray){"stages", &p->rows[0][0], p->n_rows, PROG_ROW, PROG_MAX_STAGES, 0});
    add(s, (CkptArray){"stages_se", &p->se_rows[0][0], p->n_rows, PROG_MAX_CAND, PROG_MAX_STAGES, 0});
    /* the order blocks unfreeze in (after reverse; random and depth their own): what the run trained */
    for (int b = 0; b < L; b++) p->io_train_order[b] = p->order[b];
    add(s, (CkptArray){"train_order", p->io_train_order, L, 0, L, 1});
    double sc[N_SCALARS] = {p->stage, p->m, p->searching, (double)p->search_end, p->n_cand, p->probe_last, p->train_s};
    memcpy(p->io_scalar, sc, sizeof sc);
    for (int c = 0; c < PROG_MAX_CAND; c++) p->io_cand[c] = p->cand[c];
    static char names[N_SCALARS + N_VECTORS][32];
    for (int i = 0; i < N_SCALARS; i++) {
        snprintf(names[i], sizeof names[i], "state/%s", SCALARS[i]);
        add(s, (CkptArray){names[i], &p->io_scalar[i], 1, 0, 1, 0});
    }
    for (int i = 0; i < N_VECTORS; i++) {
        snprintf(names[N_SCALARS + i], sizeof names[0], "state/%s", VECTORS[i]);
        add(s, (CkptArray){names[N_SCALARS + i], vector_of(p, i), PROG_MAX_CAND, 0, PROG_MAX_CAND, 0});
    }
    /* read-only: the previous form (rows = 0, so never written) */
    add(s, (CkptArray){"progress", p->io_legacy, 0, PROG_STATE_LEN, 1, 0});
}

/* The previous form: stage, m, searching, search_end, n_cand, probe_last,
 * train_s, a spare, then (cand, drop, cost, count) per candidate. */
static void take_legacy(Prog *p, const double *v) {
    double sc[N_SCALARS] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    memcpy(p->io_scalar, sc, sizeof sc);
    for (int c = 0; c < PROG_MAX_CAND; c++) {
        p->io_cand[c] = v[8 + 4 * c];
        p->drop[c] = v[9 + 4 * c];
        p->cost[c] = v[10 + 4 * c];
        p->count[c] = v[11 + 4 * c];
    }
}

void prog_ckpt_take(Prog *p, const CkptState *s, int with_progress) {
    const CkptArray *cei = find_array(s, "cei"), *order = find_array(s, "order");
    /* random and depth orders ignore any ranking in the file */
    if (p->uses_cei && cei && order && cei->rows == p->L && order->rows == p->L) {
        int o[EP_MAX_BLOCKS];
        for (int b = 0; b < p->L; b++) o[b] = (int)p->io_order[b];
        prog_set_order(p, p->cei, o);
    }
    if (!with_progress) return;
    p->n_rows = find_array(s, "stages")->rows;
    if (find_array(s, "stages_se")->rows != p->n_rows) /* a file from before CE's standard error */
        for (int r = 0; r < PROG_MAX_STAGES; r++)
            for (int c = 0; c < PROG_MAX_CAND; c++) p->se_rows[r][c] = NAN;
    const CkptArray *named = find_array(s, "state/stage"), *legacy = find_array(s, "progress");
    if (named->rows == 1) {
        for (int i = 0; i < N_SCALARS + N_VECTORS; i++) {
            char name[32];
            snprintf(name, sizeof name, "state/%s", i < N_SCALARS ? SCALARS[i] : VECTORS[i - N_SCALARS]);
            const CkptArray *a = find_array(s, name);
            if (i >= N_SCALARS + N_REQUIRED && a->rows == 0) { /* added later: absent from older files; */
                double *v = vector_of(p, i - N_SCALARS);     /* a window in flight then reports no SE */
                for (int c = 0; c < PROG_MAX_CAND; c++) v[c] = NAN;
                continue;
            }
            if (a->rows != (i < N_SCALARS ? 1 : PROG_MAX_CAND))
                ep_die("checkpoint: /schedule/%s is missing or has %d entries (Ent-Prog progress incomplete)", name, a->rows);
        }
    } else if (legacy->rows == 1) {
        take_legacy(p, p->io_legacy);
        for (int c = 0; c < PROG_MAX_CAND; c++) p->drop2[c] = p->cost2[c] = p->dropcost[c] = NAN; /* SE unknown */
    } else {
        return; /* no progress stored: a checkpoint of a run before its first stage */
    }
    const double *v = p->io_scalar;
    p->stage = (int)v[0], p->m = (int)v[1], p->searching = (int)v[2], p->search_end = (long long)v[3];
    p->n_cand = (int)v[4], p->probe_last = v[5], p->train_s = v[6];
    for (int c = 0; c < PROG_MAX_CAND; c++) p->cand[c] = (int)p->io_cand[c];
}
