#include "entprog.h"
#include "die.h"
#include "rng.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *NAMES[] = {"full", "entprog", "static", "linear", "random", "depth", "temporal"};

const char *prog_method_name(ProgMethod m) { return NAMES[m]; }

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
    if (p->L > 512) ep_die("entprog: model.L = %d blocks is more than the 512 supported", p->L);
    for (int i = 0; i < 7; i++)
        if (!strcmp(g->method, NAMES[i])) p->method = (ProgMethod)i;
    p->steps = d->train.steps;
    p->K = p->method == PM_FULL || p->method == PM_TEMPORAL || p->method == PM_STATIC ? 1 : g->stages;
    if (p->K > PROG_MAX_STAGES) ep_die("entprog.stages = %d: at most %d", g->stages, PROG_MAX_STAGES);
    p->adaptive = p->method == PM_ENTPROG || p->method == PM_RANDOM || p->method == PM_DEPTH;
    p->uses_cei = p->method == PM_ENTPROG || p->method == PM_STATIC || p->method == PM_LINEAR;
    p->supernet = !strcmp(g->search, "supernet");
    p->train_inputs = g->train_inputs;
    p->reverse = g->reverse;
    p->window = g->search_steps;
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
    if (p->adaptive && p->window * 2 > p->steps / p->K)
        ep_die("entprog.search_steps = %d: the search window must fit in half a stage (%d steps / %d stages)",
               p->window, p->steps, p->K);
    /* orders that do not come from CEI */
    for (int b = 0; b < p->L; b++) p->order[b] = p->method == PM_DEPTH ? p->L - 1 - b : b;
    if (p->method == PM_RANDOM) {
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
    p->m = p->method == PM_STATIC ? (g->static_m ? g->static_m : (p->L + 1) / 2) : 0;
}

void prog_set_order(Prog *p, const double *cei, const int *order) {
    memcpy(p->cei, cei, p->L * sizeof(double));
    memcpy(p->ranking, order, p->L * sizeof(int));
    for (int i = 0; i < p->L; i++) p->order[i] = order[p->reverse ? p->L - 1 - i : i];
    p->has_cei = 1;
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
    if (p->method == PM_LINEAR) return (p->L * (k + 1) + p->K - 1) / p->K;
    if (p->method == PM_STATIC) return p->m;
    return p->L;
}

void prog_mask(const Prog *p, const Model *model, int m, uint8_t *mask) {
    const ParamTable *pt = &model->pt;
    memset(mask, 0, pt->n);
    if (p->method == PM_FULL) {
        memset(mask, 1, pt->n);
        return;
    }
    if (p->method == PM_TEMPORAL) {
        for (int b = 0; b < p->L; b++)
            for (int k = BP_TQKV_W; k <= BP_TPROJ_B; k++) mask[pt->blk0 + b * BP_COUNT + k] = 1;
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

void prog_record(Prog *p, int stage, long long first_step, int m_star, const int *cand, const double *ce, int n) {
    if (p->n_rows >= PROG_MAX_STAGES) return;
    double *r = p->rows[p->n_rows++];
    for (int i = 0; i < PROG_ROW; i++) r[i] = NAN;
    r[0] = stage, r[1] = (double)first_step, r[2] = m_star;
    for (int i = 0; i < n; i++) r[3 + 2 * i] = cand[i], r[4 + 2 * i] = ce ? ce[i] : NAN;
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

void prog_pack(const Prog *p, double *v) {
    int i = 0;
    v[i++] = p->stage, v[i++] = p->m, v[i++] = p->searching, v[i++] = (double)p->search_end;
    v[i++] = p->n_cand, v[i++] = p->probe_last, v[i++] = p->train_s, v[i++] = 0;
    for (int c = 0; c < PROG_MAX_CAND; c++) {
        v[i++] = p->cand[c];
        v[i++] = p->drop[c];
        v[i++] = p->cost[c];
        v[i++] = p->count[c];
    }
}

void prog_unpack(Prog *p, const double *v) {
    int i = 0;
    p->stage = (int)v[i++], p->m = (int)v[i++], p->searching = (int)v[i++], p->search_end = (long long)v[i++];
    p->n_cand = (int)v[i++], p->probe_last = v[i++], p->train_s = v[i++];
    i++;
    for (int c = 0; c < PROG_MAX_CAND; c++) {
        p->cand[c] = (int)v[i++];
        p->drop[c] = v[i++];
        p->cost[c] = v[i++];
        p->count[c] = v[i++];
    }
}
