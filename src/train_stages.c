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
#include "ops.h"
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
    printf("; memory now %.1f MiB (gradients %.1f, optimizer %.1f)\n", ops_mem_in_use() / 1048576.0,
           tr->model.grad_cap * 4.0 / 1048576.0, tr->opt.size * 4.0 * (tr->opt.v ? 2 : 1) / 1048576.0);
    fflush(stdout);
}

static void report_peak(Trainer *tr) {
    if (root(tr) && tr->prog.stage >= 0)
        printf("stage %d peak memory (allocator): %.1f MiB\n", tr->prog.stage + 1, ops_mem_peak() / 1048576.0);
}

/* ---- independent trials, partitioned across rank groups ---- */

/* Everything a candidate starts from, unsharded (the same on every rank). */
typedef struct {
    float *params, *ema, *m, *v;
    long long *t;
    uint8_t *keep;
    size_t moments;
    Rng rng;
    long long step, samples_seen;
} Snapshot;

static void snap_free(Snapshot *s) {
    mem_free(s->params), mem_free(s->ema), mem_free(s->m), mem_free(s->v);
    free(s->t), free(s->keep);
    memset(s, 0, sizeof *s);
}

/* Takes the trainer's state; the optimizer's shards are gathered over comm. */
static void snap_take(Snapshot *s, Trainer *tr, MPI_Comm comm) {
    const ParamTable *pt = &tr->model.pt;
    size_t n = pt->total * sizeof(float);
    snap_free(s);
    s->params = mem_alloc(n, "search snapshot");
    model_params_to_host(&tr->model);
    memcpy(s->params, tr->model.params, n);
    if (tr->ema) {
        s->ema = mem_alloc(n, "search snapshot");
        ops_download(s->ema, tr->ema, n);
    }
    s->moments = optim_gather(&tr->opt, comm, &s->m, &s->v);
    s->t = ep_malloc(pt->n * sizeof(long long), "search snapshot");
    memcpy(s->t, tr->opt.t, pt->n * sizeof(long long));
    s->keep = ep_malloc(pt->n, "search snapshot");
    for (int i = 0; i < pt->n; i++) s->keep[i] = tr->opt.off[i] != (size_t)-1;
    s->rng = tr->rng, s->step = tr->step, s->samples_seen = tr->samples_seen;
}

/* Gives it back, the moments sharded over the trainer's current ranks. */
static void snap_give(const Snapshot *s, Trainer *tr) {
    const ParamTable *pt = &tr->model.pt;
    size_t n = pt->total * sizeof(float), lo, hi;
    memcpy(tr->model.params, s->params, n);
    model_params_written(&tr->model);
    if (tr->ema) ops_upload(tr->ema, s->ema, n);
    dp_range(pt->total, tr->dp.rank, tr->dp.size, &lo, &hi);
    memcpy(tr->opt.t, s->t, pt->n * sizeof(long long));
    optim_scatter(&tr->opt, s->keep, lo, hi, s->m, s->v);
    tr->rng = s->rng, tr->step = s->step, tr->samples_seen = s->samples_seen;
}

/* Sends rank root's snapshot to every rank of comm. */
static void snap_bcast(Snapshot *s, Trainer *tr, int root, MPI_Comm comm) {
    const ParamTable *pt = &tr->model.pt;
    int me;
    MPI_Comm_rank(comm, &me);
    unsigned long long moments = s->moments;
    MPI_Bcast(&moments, 1, MPI_UNSIGNED_LONG_LONG, root, comm);
    if (me != root) {
        snap_free(s);
        s->params = mem_alloc(pt->total * sizeof(float), "search snapshot");
        if (tr->ema) s->ema = mem_alloc(pt->total * sizeof(float), "search snapshot");
        s->m = mem_alloc(moments * sizeof(float), "search snapshot");
        if (tr->opt.v) s->v = mem_alloc(moments * sizeof(float), "search snapshot");
        s->t = ep_malloc(pt->n * sizeof(long long), "search snapshot");
        s->keep = ep_malloc(pt->n, "search snapshot");
        s->moments = moments;
    }
    /* counts in ints: parameter tensors stay far below 2^31 floats per bcast piece */
    for (size_t at = 0; at < pt->total; at += (size_t)1 << 28) {
        int c = (int)(pt->total - at < ((size_t)1 << 28) ? pt->total - at : ((size_t)1 << 28));
        MPI_Bcast(s->params + at, c, MPI_FLOAT, root, comm);
        if (s->ema) MPI_Bcast(s->ema + at, c, MPI_FLOAT, root, comm);
    }
    for (size_t at = 0; at < moments; at += (size_t)1 << 28) {
        int c = (int)(moments - at < ((size_t)1 << 28) ? moments - at : ((size_t)1 << 28));
        MPI_Bcast(s->m + at, c, MPI_FLOAT, root, comm);
        if (s->v) MPI_Bcast(s->v + at, c, MPI_FLOAT, root, comm);
    }
    MPI_Bcast(s->t, pt->n, MPI_LONG_LONG, root, comm);
    MPI_Bcast(s->keep, pt->n, MPI_UNSIGNED_CHAR, root, comm);
    MPI_Bcast(&s->rng, sizeof s->rng, MPI_BYTE, root, comm);
    MPI_Bcast(&s->step, 1, MPI_LONG_LONG, root, comm);
    MPI_Bcast(&s->samples_seen, 1, MPI_LONG_LONG, root, comm);
}

/* The cost CE divides by: the step's wall time averaged over the ranks of the
 * group (so they all compute the same CE), or the deterministic model. */
static double step_cost(const Trainer *tr, double seconds) {
    if (strcmp(tr->deck->prog.timing, "cost") == 0) return prog_step_cost(&tr->model);
    return dp_sum(&tr->dp, seconds) / tr->dp.size;
}

/* The ranks split into G = min(|M_k|, R) groups of R/G ranks (the rest wait);
 * group g trains candidates g, g+G, ... one after another from the same
 * snapshot, data-parallel inside the group, for the window. CE(m) is gathered
 * (max-reduce of a table only the owner fills), every rank picks the same m*,
 * and the winning group's state is broadcast. With one rank this is the
 * sequential independent-trials search; with |M_k| groups the search costs
 * one window of wall time. */
static void run_trials(Trainer *tr, int k) {
    Prog *p = &tr->prog;
    Dp world = tr->dp;
    int G = p->n_cand < world.size ? p->n_cand : world.size, q = world.size / G;
    int group = world.rank / q < G ? world.rank / q : -1;
    long long first = tr->step;
    Snapshot start = {0}, best = {0};
    double t_search = now_s(), t0 = now_s(), probe0 = trainer_probe(tr), ce[PROG_MAX_CAND];
    snap_take(&start, tr, world.comm);
    p->train_s += now_s() - t0;
    MPI_Comm gcomm;
    MPI_Comm_split(world.comm, group >= 0 ? group : MPI_UNDEFINED, world.rank, &gcomm);
    for (int c = 0; c < p->n_cand; c++) ce[c] = -INFINITY;
    int best_c = -1;
    if (group >= 0) {
        dp_init(&tr->dp, gcomm);
        for (int c = group; c < p->n_cand; c += G) {
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
            if (best_c < 0 || ce[c] > ce[best_c]) { /* strictly better: ties keep the smaller m */
                best_c = c;
                snap_take(&best, tr, gcomm);
            }
        }
        tr->dp = world;
    }
    double all[PROG_MAX_CAND];
    MPI_Allreduce(ce, all, p->n_cand, MPI_DOUBLE, MPI_MAX, world.comm);
    int win = 0;
    for (int c = 1; c < p->n_cand; c++)
        if (all[c] > all[win]) win = c;
    snap_bcast(&best, tr, (win % G) * q, world.comm);
    tr->dp = world;
    snap_give(&best, tr);
    p->m = p->cand[win];
    stages_apply(tr, p->m, 1);
    if (gcomm != MPI_COMM_NULL) MPI_Comm_free(&gcomm);
    snap_free(&start);
    snap_free(&best);
    if (root(tr))
        printf("stage %d search: %d candidates on %d group%s of %d rank%s, %.2f s wall, peak memory (allocator) %.1f MiB\n",
               k + 1, p->n_cand, G, G > 1 ? "s" : "", q, q > 1 ? "s" : "", now_s() - t_search, ops_mem_peak() / 1048576.0);
    ops_mem_reset_peak(); /* from here the stage's own peak */
    prog_record(p, k, first, p->m, p->cand, all, p->n_cand);
    report_stage(tr, k, all);
}

/* ---- stage starts ---- */

void stages_before_step(Trainer *tr) {
    Prog *p = &tr->prog;
    int k = prog_stage_of(p, tr->step);
    if (k <= p->stage) return;
    report_peak(tr);
    ops_mem_reset_peak();
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
    if (root(tr)) printf("stage %d search window peak memory (allocator): %.1f MiB\n", p->stage + 1, ops_mem_peak() / 1048576.0);
    stages_apply(tr, p->m, 1);
    ops_mem_reset_peak(); /* from here the stage's own peak */
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
