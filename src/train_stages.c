/* Ent-Prog stages inside the training loop: at each stage start either a
 * fixed m (linear, static) or a search over candidate counts m (entprog,
 * random, depth): CE(m) = probe-loss drop / cost of its own steps, m* =
 * argmax. Two search forms: the paper's nested supernet (each step of the
 * window samples m, weights shared) and independent trials (each candidate
 * trains the window from the same snapshot; the winner's state goes on). */
#include "cei.h"
#include "ckpt_schedule.h"
#include "die.h"
#include "mem.h"
#include "train.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int root(const Trainer *tr) { return tr->rank == 0; }

void stages_apply(Trainer *tr, int m, int exact) {
    prog_mask(&tr->prog, &tr->model, m, tr->mask);
    model_set_trainable(&tr->model, tr->mask, exact);
    if (exact) optim_fit(&tr->opt, tr->mask);
}

static int count_blocks(const Trainer *tr) {
    int n = 0;
    for (int b = 0; b < tr->model.shape.L; b++)
        for (int k = 0; k < BP_COUNT; k++)
            if (tr->model.trainable[tr->model.pt.blk0 + b * BP_COUNT + k]) {
                n++;
                break;
            }
    return n;
}

static void report_stage(Trainer *tr, int k, const double *ce) {
    if (!root(tr)) return;
    Prog *p = &tr->prog;
    printf("stage %d/%d (steps %lld-%lld), at step %lld: m = %d blocks train (%d with a trainable tensor), "
           "backward reaches block %d", k + 1, p->K, prog_stage_start(p, k), prog_stage_start(p, k + 1) - 1, tr->step,
           p->m, count_blocks(tr), tr->model.first_bwd);
    if (ce) {
        printf("; CE(m) =");
        for (int i = 0; i < p->n_cand; i++) printf(" %d:%.4g", p->cand[i], ce[i]);
    }
    printf("; memory now %.1f MiB (gradients %.1f, optimizer %.1f)\n", mem_in_use() / 1048576.0,
           tr->model.grad_cap * 4.0 / 1048576.0, tr->opt.size * 4.0 * (tr->opt.v ? 2 : 1) / 1048576.0);
    fflush(stdout);
}

static void report_peak(Trainer *tr) {
    if (root(tr) && tr->prog.stage >= 0)
        printf("stage %d peak memory (allocator): %.1f MiB\n", tr->prog.stage + 1, mem_peak() / 1048576.0);
}

/* ---- independent trials ---- */

typedef struct {
    float *params, *ema;
    Optimizer opt;
    Rng rng;
    long long step, samples_seen;
} Snapshot;

static void snap_take(Snapshot *s, Trainer *tr) {
    size_t n = tr->model.pt.total * sizeof(float);
    if (!s->params) {
        s->params = mem_alloc(n, "search snapshot");
        if (tr->ema) s->ema = mem_alloc(n, "search snapshot");
        optim_create(&s->opt, tr->opt.kind, &tr->model.pt);
    }
    memcpy(s->params, tr->model.params, n);
    if (tr->ema) memcpy(s->ema, tr->ema, n);
    optim_copy(&s->opt, &tr->opt);
    s->rng = tr->rng, s->step = tr->step, s->samples_seen = tr->samples_seen;
}

static void snap_give(const Snapshot *s, Trainer *tr) {
    size_t n = tr->model.pt.total * sizeof(float);
    memcpy(tr->model.params, s->params, n);
    if (tr->ema) memcpy(tr->ema, s->ema, n);
    optim_copy(&tr->opt, &s->opt);
    tr->rng = s->rng, tr->step = s->step, tr->samples_seen = s->samples_seen;
}

static void snap_free(Snapshot *s) {
    mem_free(s->params);
    mem_free(s->ema);
    if (s->opt.off) optim_destroy(&s->opt);
}

static double step_cost(const Trainer *tr, double seconds) {
    return strcmp(tr->deck->prog.timing, "cost") == 0 ? prog_step_cost(&tr->model) : seconds;
}

static void run_trials(Trainer *tr, int k) {
    Prog *p = &tr->prog;
    long long first = tr->step;
    Snapshot start = {0}, best = {0};
    snap_take(&start, tr);
    double t0 = now_s(), probe0 = trainer_probe(tr), ce[PROG_MAX_CAND];
    p->train_s += now_s() - t0;
    int win = -1;
    for (int c = 0; c < p->n_cand; c++) {
        snap_give(&start, tr);
        stages_apply(tr, p->cand[c], 1);
        p->m = p->cand[c];
        double cost = 0;
        for (int s = 0; s < p->window && tr->step < p->steps; s++) {
            double a = now_s(), gnorm, lr;
            double loss = trainer_step(tr, &gnorm, &lr);
            double sec = now_s() - a;
            p->train_s += sec;
            cost += step_cost(tr, sec);
            trainer_log_row(tr, "search", loss, gnorm, lr, 1e3 * sec);
        }
        double a = now_s(), probe = trainer_probe(tr);
        p->train_s += now_s() - a;
        ce[c] = cost > 0 ? (probe0 - probe) / cost : -INFINITY;
        if (win < 0 || ce[c] > ce[win]) { /* strictly better: ties keep the smaller m */
            win = c;
            snap_take(&best, tr);
        }
    }
    snap_give(&best, tr);
    p->m = p->cand[win];
    stages_apply(tr, p->m, 1);
    snap_free(&start);
    snap_free(&best);
    if (root(tr)) printf("stage %d search peak memory (allocator): %.1f MiB\n", k + 1, mem_peak() / 1048576.0);
    mem_reset_peak(); /* from here the stage's own peak */
    prog_record(p, k, first, p->m, p->cand, ce, p->n_cand);
    report_stage(tr, k, ce);
}

/* ---- stage starts ---- */

void stages_before_step(Trainer *tr) {
    Prog *p = &tr->prog;
    int k = prog_stage_of(p, tr->step);
    if (k <= p->stage) return;
    report_peak(tr);
    mem_reset_peak();
    p->stage = k;
    if (!p->adaptive) {
        p->m = prog_fixed_m(p, k);
        p->n_cand = 0;
        stages_apply(tr, p->m, 1);
        prog_record(p, k, tr->step, p->m, &p->m, NULL, p->method == PM_LINEAR || p->method == PM_STATIC);
        report_stage(tr, k, NULL);
        return;
    }
    p->n_cand = prog_candidates(p, k, p->m, p->cand);
    if (p->n_cand == 1) {
        p->m = p->cand[0];
        stages_apply(tr, p->m, 1);
        prog_record(p, k, tr->step, p->m, p->cand, NULL, 1);
        report_stage(tr, k, NULL);
        return;
    }
    if (!p->supernet) {
        run_trials(tr, k);
        return;
    }
    /* supernet window: memory for the largest candidate, shared weights */
    p->searching = 1;
    p->search_end = tr->step + p->window;
    for (int c = 0; c < PROG_MAX_CAND; c++) p->drop[c] = p->cost[c] = p->count[c] = 0;
    stages_apply(tr, p->cand[p->n_cand - 1], 1);
    double t0 = now_s();
    p->probe_last = trainer_probe(tr);
    p->train_s += now_s() - t0;
    if (root(tr)) {
        printf("stage %d/%d from step %lld: supernet search over m in {", k + 1, p->K, tr->step);
        for (int c = 0; c < p->n_cand; c++) printf(c ? ", %d" : "%d", p->cand[c]);
        printf("} for %d steps\n", p->window);
    }
}

void stages_pick_candidate(Trainer *tr) {
    Prog *p = &tr->prog;
    if (!p->searching) return;
    /* uniform among the candidates sampled least so far: random, yet every
     * candidate gets its share of a short window */
    double least = p->count[0];
    for (int i = 1; i < p->n_cand; i++) least = p->count[i] < least ? p->count[i] : least;
    int pool[PROG_MAX_CAND], n = 0;
    for (int i = 0; i < p->n_cand; i++)
        if (p->count[i] == least) pool[n++] = i;
    p->m = p->cand[pool[rng_below(&tr->rng, (uint32_t)n)]];
    prog_mask(p, &tr->model, p->m, tr->mask);
    model_set_trainable(&tr->model, tr->mask, 0); /* within the window's memory */
}

void stages_after_step(Trainer *tr, double seconds) {
    Prog *p = &tr->prog;
    if (!p->searching) return;
    int c = 0;
    while (p->cand[c] != p->m) c++;
    double t0 = now_s(), probe = trainer_probe(tr);
    double probe_s = now_s() - t0;
    p->train_s += probe_s;
    p->drop[c] += p->probe_last - probe;
    p->cost[c] += step_cost(tr, seconds);
    p->count[c] += 1;
    p->probe_last = probe;
    if (tr->step < p->search_end) return;
    double ce[PROG_MAX_CAND];
    for (int i = 0; i < p->n_cand; i++) ce[i] = p->count[i] > 0 && p->cost[i] > 0 ? p->drop[i] / p->cost[i] : -INFINITY;
    int win = prog_pick(p, ce);
    p->searching = 0;
    p->m = p->cand[win];
    if (root(tr)) printf("stage %d search window peak memory (allocator): %.1f MiB\n", p->stage + 1, mem_peak() / 1048576.0);
    stages_apply(tr, p->m, 1);
    mem_reset_peak(); /* from here the stage's own peak */
    prog_record(p, p->stage, p->search_end - p->window, p->m, p->cand, ce, p->n_cand);
    report_stage(tr, p->stage, ce);
}

void stages_rank_blocks(Trainer *tr, const char *init_path) {
    Prog *p = &tr->prog;
    double cei[512];
    int order[512];
    if (init_path && ckpt_read_cei(init_path, cei, order, p->L)) {
        prog_set_order(p, cei, order);
        if (root(tr)) printf("CEI ranking from %s\n", init_path);
    } else {
        if (root(tr)) printf("CEI: scoring %d blocks on %d probe tuples\n", p->L, tr->deck->prog.cei_n);
        cei_compute(&tr->model, tr->train, tr->deck->prog.cei_n, tr->deck->train.seed, cei);
        cei_rank(cei, p->L, order);
        prog_set_order(p, cei, order);
    }
    if (root(tr)) {
        printf("CEI order:");
        for (int b = 0; b < p->L; b++) printf(" %d(%.4f)", order[b], cei[order[b]]);
        printf("\n");
    }
}
