/* Ent-Prog stages inside the training loop: at each stage start either a
 * fixed m (linear, static) or a search over candidate counts m (entprog,
 * random, depth): CE(m) = probe-loss drop / cost of its own steps, m* =
 * argmax. Two search forms: the paper's nested supernet (each step of the
 * window samples m, weights shared) and independent trials (each candidate
 * trains the window from the same snapshot; the winner's state goes on).
 * Both are driven by the loop one step at a time (stages_before_step /
 * stages_after_step); the decisions and Prog's fields are src/train/entprog.c's. */
#include "core/clock.h"
#include "core/die.h"
#include "core/mem.h"
#include "ops/ops.h"
#include "train/cei.h"
#include "train/metrics.h"
#include "train/stages.h"
#include "io/ckpt_schedule.h"
#include "mpi/dp_nccl.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int root(const Trainer *tr) { return tr->rank == 0; }

void stages_apply(Trainer *tr, int m, int exact) {
    prog_mask(&tr->prog, &tr->model, m, tr->mask);
    model_set_trainable(&tr->model, tr->mask, exact);
    if (!exact) return;
    /* between steps the gradients are dead (train_step zeroes them first):
     * they carry the kept moments across, so old and new moments are never
     * held together. Kept tensors train, so they fit in the gradient buffer. */
    tr->model.cgrads_zero = 0;
    optim_refit(&tr->opt, tr->mask, tr->model.cgrads, tr->model.grad_cap);
}

/* Every change of the trainable set between phases (stages, search windows)
 * goes through here, so each phase's peak is measured the same way: from
 * after its refit. The refit itself holds no more than the larger of the
 * two phases (optim_refit), so neither's peak hides or gains it. */
static void apply_phase(Trainer *tr, int m) {
    stages_apply(tr, m, 1);
    ops_mem_reset_peak();
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

/* Whether the search told its best candidate from the next best: when their
 * CEs differ by less than the larger standard error, m* rests on noise (the
 * decision is kept: the paper's argmax). Measured (benchmarks/ce_noise.sh):
 * the noise is the single steps' loss drops, not the probe set, so the note
 * points to the paired search rather than to more probe data. */
static void report_separation(const Prog *p, int k, const double *ce, const double *se) {
    if (!ce || !se || p->n_cand < 2) return;
    int a = 0, b = -1; /* best and runner-up, ties to the smaller m as prog_pick */
    for (int i = 1; i < p->n_cand; i++)
        if (ce[i] > ce[a]) a = i;
    for (int i = 0; i < p->n_cand; i++)
        if (i != a && (b < 0 || ce[i] > ce[b])) b = i;
    double s = fmax(se[a], se[b]);
    if (isnan(s) || !(ce[a] - ce[b] < s)) return;
    printf("stage %d: note: CE(%d) = %.4g and CE(%d) = %.4g differ by less than their standard error (%.2g): the "
           "search could not tell them apart (m* is the argmax, as in the paper). The supernet credits each step's "
           "loss drop to the m drawn for it, and those drops vary far more than the candidates differ; more probe "
           "data does not narrow it. entprog.search = trials compares the candidates on the same batches "
           "(docs/entprog.md)\n", k + 1, p->cand[a], ce[a], p->cand[b], ce[b], s);
}

static void report_stage(Trainer *tr, int k, const double *ce, const double *se) {
    if (!root(tr)) return;
    Prog *p = &tr->prog;
    printf("stage %d/%d (steps %lld-%lld), at step %lld: m = %d blocks train (%d with a trainable tensor), "
           "backward reaches block %d", k + 1, p->K, prog_stage_start(p, k), prog_stage_start(p, k + 1) - 1, tr->step,
           p->m, count_blocks(tr), tr->model.first_bwd);
    if (ce) {
        printf("; CE(m) =");
        for (int i = 0; i < p->n_cand; i++) {
            printf(" %d:%.4g", p->cand[i], ce[i]);
            if (se && !isnan(se[i])) printf(" (SE %.2g, %.0f steps)", se[i], p->count[i]);
        }
    }
    printf("; memory now %.1f MiB (gradients %.1f, optimizer %.1f)\n", ops_mem_in_use() / 1048576.0,
           tr->model.grad_cap * 4.0 / 1048576.0, tr->opt.size * 4.0 * (tr->opt.v ? 2 : 1) / 1048576.0);
    report_separation(p, k, ce, se);
    fflush(stdout);
}

/* A probe row of metrics.csv: the probe loss CE is measured on and, after a
 * search step, the candidate and the cost CE divides by (m, cost; empty at a
 * window's start), so CE(m) can be recomputed from the log alone. */
static void log_probe(Trainer *tr, double loss, int m, double cost) {
    if (!tr->metrics) return;
    MetricsRow r = {.kind = "probe"};
    metrics_set(&r, MC_STEP, (double)tr->step);
    metrics_set(&r, MC_LOSS, loss);
    metrics_set(&r, MC_STAGE, tr->prog.stage);
    if (m > 0) metrics_set(&r, MC_M, m), metrics_set(&r, MC_COST, cost);
    metrics_set(&r, MC_TRAIN_S, tr->prog.train_s);
    metrics_write_row(tr->metrics, &r);
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
    for (int i = 0; i < pt->n; i++) s->keep[i] = tr->opt.off[i] != (size_t)-1 ? tr->opt.how[i] : 0;
    s->rng = tr->rng, s->step = tr->step, s->samples_seen = tr->samples_seen;
}

/* Gives it back, the moments sharded over the trainer's current ranks. */
static void snap_give(const Snapshot *s, Trainer *tr) {
    const ParamTable *pt = &tr->model.pt;
    size_t n = pt->total * sizeof(float), lo, hi;
    memcpy(tr->model.params, s->params, n);
    model_params_written(&tr->model);
    if (tr->ema) ops_upload(tr->ema, s->ema, n);
    dp_range(pt->total, tr->comm.dp.rank, tr->comm.dp.size, &lo, &hi);
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
    return dp_sum(&tr->comm.dp, seconds) / tr->comm.dp.size;
}

/* ---- independent trials, one step at a time ----
 * The ranks split into G = min(|M_k|, R) groups of R/G ranks (the rest
 * wait); group g trains candidates g, g+G, ... one after another from the
 * same snapshot, data-parallel inside the group, for the window. The loop
 * drives the search in ticks: at each tick every group with a candidate in
 * the current round takes one step of it. CE(m) is gathered (max-reduce of a
 * table only the owner fills), every rank picks the same m*, and the winning
 * group's state is broadcast. With one rank this is the sequential
 * independent-trials search; with |M_k| groups it costs one window of wall time. */
typedef struct Trials {
    int G, q, group;          /* groups, ranks per group, this rank's group (-1: waits) */
    int window;               /* steps per candidate (the window, cut at train.steps) */
    int tick, ticks;          /* ticks done, ticks in all (rounds * window) */
    int c, s;                 /* this group's candidate and its steps done */
    int m_before;             /* m before the stage began (restored if abandoned) */
    int best_c;
    long long first;          /* the step the search began at */
    double probe0, cost, t_search, ce[PROG_MAX_CAND];
    MPI_Comm gcomm;
    struct DpNccl *gnccl, *world_nccl; /* the group's NCCL communicator (NULL: none), the run's */
    Snapshot start, best;
} Trials;

/* Gives group's candidate c the start state and its trainable set. */
static void trials_begin_candidate(Trainer *tr, Trials *t) {
    Prog *p = &tr->prog;
    snap_give(&t->start, tr);
    stages_apply(tr, p->cand[t->c], 1);
    prog_trials_candidate(p, t->c);
    t->s = 0, t->cost = 0;
}

static void trials_begin(Trainer *tr, int m_before) {
    Prog *p = &tr->prog;
    Trials *t = ep_malloc(sizeof *t, "trials search");
    memset(t, 0, sizeof *t);
    tr->trials = t;
    Dp world = tr->all;
    t->G = p->n_cand < world.size ? p->n_cand : world.size, t->q = world.size / t->G;
    t->group = world.rank / t->q < t->G ? world.rank / t->q : -1;
    t->first = tr->step;
    t->m_before = m_before;
    t->window = (int)(p->window < p->steps - tr->step ? p->window : p->steps - tr->step);
    t->ticks = (p->n_cand + t->G - 1) / t->G * t->window;
    t->best_c = -1;
    t->t_search = clock_s();
    double t0 = clock_s();
    t->probe0 = trainer_probe(tr);
    snap_take(&t->start, tr, world.comm);
    prog_spend(p, clock_s() - t0);
    log_probe(tr, t->probe0, 0, 0);
    MPI_Comm_split(world.comm, t->group >= 0 ? t->group : MPI_UNDEFINED, world.rank, &t->gcomm);
    for (int c = 0; c < p->n_cand; c++) t->ce[c] = -INFINITY;
    t->c = t->group;
    /* NCCL too gets one communicator per group, made here once for the search:
     * over the world's, the groups' gradients would mix */
    t->world_nccl = tr->comm.nccl;
    tr->comm.nccl = NULL;
    if (t->group >= 0) {
        dp_init(&tr->comm.dp, t->gcomm);
        if (t->world_nccl && t->q > 1) tr->comm.nccl = t->gnccl = dp_nccl_create(&tr->comm.dp);
        trials_begin_candidate(tr, t);
    }
}

static int trials_stepping(const Trainer *tr) {
    const Trials *t = tr->trials;
    return t->group >= 0 && t->c < tr->prog.n_cand && t->s < t->window;
}

static void trials_free(Trainer *tr) {
    Trials *t = tr->trials;
    if (t->gcomm != MPI_COMM_NULL) MPI_Comm_free(&t->gcomm);
    dp_nccl_destroy(t->gnccl);
    snap_free(&t->start);
    snap_free(&t->best);
    tr->comm.dp = tr->all;
    tr->comm.nccl = t->world_nccl;
    free(t);
    tr->trials = NULL;
}

static void trials_after_step(Trainer *tr, double seconds) {
    Trials *t = tr->trials;
    Prog *p = &tr->prog;
    if (trials_stepping(tr)) {
        t->cost += step_cost(tr, seconds);
        if (++t->s == t->window) { /* this candidate's window is done: its CE */
            double a = clock_s(), probe = trainer_probe(tr);
            prog_spend(p, clock_s() - a);
            t->ce[t->c] = t->cost > 0 ? (t->probe0 - probe) / t->cost : -INFINITY;
            log_probe(tr, probe, p->cand[t->c], t->cost);
            if (t->best_c < 0 || t->ce[t->c] > t->ce[t->best_c]) { /* strictly better: ties keep the smaller m */
                t->best_c = t->c;
                snap_take(&t->best, tr, t->gcomm);
            }
            t->c += t->G;
            if (t->c < p->n_cand) trials_begin_candidate(tr, t);
        }
    }
    if (++t->tick < t->ticks) return;
    /* the search is over: every rank takes the winner's state */
    tr->comm.dp = tr->all, tr->comm.nccl = t->world_nccl;
    double all[PROG_MAX_CAND];
    MPI_Allreduce(t->ce, all, p->n_cand, MPI_DOUBLE, MPI_MAX, tr->all.comm);
    int win = prog_trials_decide(p, all, t->first);
    snap_bcast(&t->best, tr, (win % t->G) * t->q, tr->all.comm);
    snap_give(&t->best, tr);
    if (root(tr))
        printf("stage %d search: %d candidates on %d group%s of %d rank%s, %.2f s wall, peak memory (allocator) %.1f MiB\n",
               p->stage + 1, p->n_cand, t->G, t->G > 1 ? "s" : "", t->q, t->q > 1 ? "s" : "", clock_s() - t->t_search,
               ops_mem_peak() / 1048576.0);
    trials_free(tr); /* the snapshots go before the stage's own peak starts counting */
    apply_phase(tr, p->m);
    report_stage(tr, p->stage, all, NULL);
}

void stages_abandon_search(Trainer *tr) {
    Trials *t = tr->trials;
    if (!t) return;
    Prog *p = &tr->prog;
    tr->comm.dp = tr->all, tr->comm.nccl = t->world_nccl;
    snap_give(&t->start, tr);
    prog_trials_abandon(p, p->stage, t->m_before);
    stages_apply(tr, p->m, 1);
    trials_free(tr);
}

/* ---- the loop's hooks ---- */

int stages_before_step(Trainer *tr) {
    Prog *p = &tr->prog;
    if (tr->trials) return trials_stepping(tr);
    if (p->searching) { /* supernet window: this step's candidate, within the window's memory */
        prog_supernet_draw(p, &tr->rng);
        prog_mask(p, &tr->model, p->m, tr->mask);
        model_set_trainable(&tr->model, tr->mask, 0);
        return 1;
    }
    int k = prog_stage_of(p, tr->step), m_before = p->m;
    if (k <= p->stage) return 1;
    report_peak(tr);
    switch (prog_stage_begin(p, tr->step)) {
    case STAGE_NONE:
        return 1;
    case STAGE_FIXED:
        apply_phase(tr, p->m);
        report_stage(tr, k, NULL, NULL);
        return 1;
    case STAGE_TRIALS:
        ops_mem_reset_peak(); /* the search's peak: its snapshots and every candidate's refits */
        trials_begin(tr, m_before);
        return trials_stepping(tr);
    case STAGE_SUPERNET:
        break;
    }
    /* supernet window: memory for the largest candidate, shared weights */
    apply_phase(tr, prog_window_m(p));
    double t0 = clock_s(), probe0 = trainer_probe(tr);
    prog_supernet_begin(p, probe0);
    prog_spend(p, clock_s() - t0);
    log_probe(tr, probe0, 0, 0);
    if (root(tr)) {
        printf("stage %d/%d from step %lld: supernet search over m in {", k + 1, p->K, tr->step);
        for (int c = 0; c < p->n_cand; c++) printf(c ? ", %d" : "%d", p->cand[c]);
        printf("} for %d steps%s, m drawn %s\n", p->window, p->window_epoch ? " (one epoch)" : "",
               p->balanced ? "among the least drawn" : "uniformly (i.i.d.)");
    }
    return stages_before_step(tr); /* the window's first step picks its candidate */
}

void stages_after_step(Trainer *tr, double seconds) {
    Prog *p = &tr->prog;
    if (tr->trials) {
        trials_after_step(tr, seconds);
        return;
    }
    if (!p->searching) return;
    double t0 = clock_s(), probe = trainer_probe(tr);
    prog_spend(p, clock_s() - t0);
    double ce[PROG_MAX_CAND], se[PROG_MAX_CAND], cost = step_cost(tr, seconds);
    log_probe(tr, probe, p->m, cost);
    if (!prog_supernet_account(p, probe, cost, tr->step, ce, se)) return;
    if (root(tr)) printf("stage %d search window peak memory (allocator): %.1f MiB\n", p->stage + 1, ops_mem_peak() / 1048576.0);
    apply_phase(tr, p->m); /* from here the stage's own peak */
    report_stage(tr, p->stage, ce, se);
}

void stages_rank_blocks(Trainer *tr, const char *init_path) {
    Prog *p = &tr->prog;
    double cei[EP_MAX_BLOCKS];
    int order[EP_MAX_BLOCKS];
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
