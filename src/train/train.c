#include "train/train.h"
#include "core/finite.h"
#include "train/stages.h"
#include "train/metrics.h"
#include "ops/ops.h"
#include "io/checkpoint.h"
#include "io/weights.h"
#include "mpi/dp.h"
#include "mpi/dp_nccl.h"
#include <math.h>
#include "core/blas_core.h"
#include "core/clock.h"
#include "core/die.h"
#include "core/mem.h"
#include "core/paths.h"
#include "core/progress.h"
#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

/* ---- checkpoint files in out_dir ---- */

static void ckpt_path(const Trainer *tr, long long step, char *buf, size_t n) {
    snprintf(buf, n, "%s/ckpt_%08lld.h5", tr->deck->train.out_dir, step);
}

/* Steps of the ckpt_*.h5 files in dir, sorted ascending; returns the count. */
static int list_ckpts(const char *dir, long long *steps, int cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long s;
        char tail[8];
        if (sscanf(e->d_name, "ckpt_%lld.h5%7s", &s, tail) == 1 && strstr(e->d_name, ".h5") &&
            strcmp(e->d_name + strlen(e->d_name) - 3, ".h5") == 0 && n < cap)
            steps[n++] = s;
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
            long long t = steps[j];
            steps[j] = steps[j - 1];
            steps[j - 1] = t;
        }
    return n;
}

/* ckpt_*.h5.tmp left by a run killed while writing (never a checkpoint: a
 * checkpoint is renamed into place only when complete): removed by rank 0. */
static void remove_stale_tmps(const Trainer *tr, const char *dir) {
    DIR *d = tr->rank == 0 ? opendir(dir) : NULL;
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "ckpt_", 5) || n < 8 || strcmp(e->d_name + n - 7, ".h5.tmp")) continue;
        char path[DECK_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (remove(path) == 0) printf("removed '%s', left by an interrupted checkpoint write\n", path);
    }
    closedir(d);
}

/* Never overwrite a checkpoint of an earlier run: a fresh run needs an out_dir
 * without checkpoints, a resumed one no checkpoint past its start. */
static void guard_out_dir(const Trainer *tr, int resuming) {
    const char *dir = tr->deck->train.out_dir;
    remove_stale_tmps(tr, dir);
    long long steps[4096];
    int n = list_ckpts(dir, steps, 4096);
    if (n == 0) return;
    if (!resuming)
        ep_die("out_dir '%s' already holds checkpoints (e.g. ckpt_%08lld.h5) from an earlier run; "
               "resume with --resume, or set train.out_dir to a new folder", dir, steps[n - 1]);
    if (steps[n - 1] > tr->step)
        ep_die("out_dir '%s' holds ckpt_%08lld.h5, later than the resumed step %lld; resuming there would overwrite "
               "it: set train.out_dir to a new folder", dir, steps[n - 1], tr->step);
}


/* ---- setup ---- */

/* Host copies of the optimizer moments and EMA weights when they live on a
 * device (checkpoint I/O runs on the host); the state itself elsewhere. */
typedef struct {
    float *m, *v, *ema;
} HostCopies;

static void host_copies(Trainer *tr, CkptState *s, HostCopies *h, int download) {
    memset(h, 0, sizeof *h);
    if (ops_host_memory()) return;
    size_t nm = tr->opt.size * sizeof(float), np = tr->model.pt.total * sizeof(float);
    h->m = s->m = mem_alloc(nm, "moments on the host");
    if (tr->opt.v) h->v = s->v = mem_alloc(nm, "moments on the host");
    if (tr->ema) h->ema = s->ema = mem_alloc(np, "EMA on the host");
    if (!download) return;
    ops_download(h->m, tr->opt.m, nm);
    if (h->v) ops_download(h->v, tr->opt.v, nm);
    if (h->ema) ops_download(h->ema, tr->ema, np);
}

/* After a load into host copies: up to the device, then freed. */
static void host_copies_done(Trainer *tr, HostCopies *h, int upload) {
    size_t nm = tr->opt.size * sizeof(float), np = tr->model.pt.total * sizeof(float);
    if (upload && h->m) ops_upload(tr->opt.m, h->m, nm);
    if (upload && h->v) ops_upload(tr->opt.v, h->v, nm);
    if (upload && h->ema) ops_upload(tr->ema, h->ema, np);
    mem_free(h->m), mem_free(h->v), mem_free(h->ema);
}

/* The environment settings that change results (the GPU paths, the gradient
 * exchange), in one string: recorded in checkpoints and printed at start;
 * resuming under other settings is said (the run goes on, but not bit for
 * bit as before). The CPU backend reads none of them. */
static const char *NUMERICS_ENV[] = {"ENTPROG_GEMM", "ENTPROG_ATTN", "ENTPROG_ATTN_BANK", "ENTPROG_COMM",
                                     "ENTPROG_SIM_DEVICE", "NCCL_ALGO"};

static void numerics_string(const Trainer *tr, char *buf, size_t n) {
    int at = snprintf(buf, n, "backend=%s;blas=%s", tr->deck->train.backend, blas_core_name());
    for (size_t i = 0; i < sizeof NUMERICS_ENV / sizeof *NUMERICS_ENV && at < (int)n; i++) {
        const char *v = getenv(NUMERICS_ENV[i]);
        at += snprintf(buf + at, n - at, ";%s=%s", NUMERICS_ENV[i], v ? v : "");
    }
}

static CkptState ckpt_state(Trainer *tr) {
    CkptState s = {.pt = &tr->model.pt, .shape = tr->model.shape, .params = tr->model.params,
                   .m = tr->opt.m, .v = tr->opt.v, .opt_off = tr->opt.off, .opt_t = tr->opt.t, .ema = tr->ema,
                   .step = tr->step, .samples_seen = tr->samples_seen, .bad_steps = tr->bad_steps, .n_rng = 1, .deck_text = tr->deck->text};
    s.rng[0] = tr->rng;
    numerics_string(tr, s.numerics, sizeof s.numerics);
    prog_ckpt_add(&tr->prog, &s, 1);
    return s;
}

/* SIGUSR1 (Slurm's warning before the time limit), SIGTERM (scancel,
 * preemption) and SIGINT (Ctrl-C) only set a flag; the ranks act on it
 * together between steps: checkpoint, then exit. A second SIGINT stops at
 * once (the newest checkpoint on disk stays the one to resume from). */
static volatile sig_atomic_t stop_signal;
static void on_stop(int sig) {
    if (sig == SIGINT && stop_signal == SIGINT) {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    stop_signal = sig;
}

static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART; /* MPI and HDF5 calls carry on */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static const char *signal_name(int sig) {
    return sig == SIGUSR1 ? "SIGUSR1" : sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal";
}

/* What a later stage can hold at most: every block training (and the input
 * side where it trains), so an out-of-memory is foreseen at the start. */
static void print_most_memory(const Trainer *tr) {
    const Model *m = &tr->model;
    uint8_t *all = ep_malloc(m->pt.n, "plan mask");
    for (int i = 0; i < m->pt.n; i++) all[i] = i >= m->pt.blk0 || tr->prog.train_inputs;
    size_t act, scratch, grads;
    model_plan_mask(m, all, tr->model.B, m->shape.F, &act, &scratch, &grads);
    free(all);
    double mib = 4.0 / 1048576.0, opt = grads * (tr->opt.kind == OPT_ADAMW ? 2.0 : 1.0);
    printf("  memory if every block trains (the largest stage): gradients %.1f MiB, optimizer %.1f MiB, "
           "activations %.1f MiB, backward scratch %.1f MiB; %.1f MiB with the parameters, plus the trainer's buffers\n",
           grads * mib, opt * mib, act * mib, scratch * mib, (m->pt.total + grads + opt + act + scratch) * mib);
}

/* What this process may use of the host's memory: the cgroup's limit
 * (v2, then v1) when there is one, else the physical memory; 0 if unknown. */
static double host_limit_bytes(char *source, size_t n) {
    const char *files[] = {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        char buf[64] = "";
        if (!f) continue;
        int ok = fgets(buf, sizeof buf, f) != NULL;
        fclose(f);
        double v = ok ? strtod(buf, NULL) : 0;
        if (ok && strncmp(buf, "max", 3) && v > 0 && v < 1e18) { /* v1 says "no limit" with a huge number */
            snprintf(source, n, "the cgroup limit (%s)", files[i]);
            return v;
        }
    }
    FILE *f = fopen("/proc/meminfo", "r");
    double kib = 0;
    if (f) {
        if (fscanf(f, "MemTotal: %lf kB", &kib) != 1) kib = 0;
        fclose(f);
    }
    snprintf(source, n, "the physical memory (/proc/meminfo)");
    return kib * 1024;
}

/* Before the activations are allocated: the memory the largest stage needs on
 * the host (every block training), times the ranks on this node, against
 * what the node lets this job use. A run that cannot fit is refused now with
 * the plan and the keys that shrink it, not killed later by the kernel. */
static void check_memory_fits(const Trainer *tr) {
    const Model *m = &tr->model;
    uint8_t *all = ep_malloc(m->pt.n, "plan mask");
    for (int i = 0; i < m->pt.n; i++) all[i] = tr->prog.method->trains == TRAINS_ALL || i >= m->pt.blk0 || tr->prog.train_inputs;
    size_t act, scratch, grads;
    model_plan_mask(m, all, tr->deck->train.batch, m->shape.F, &act, &scratch, &grads);
    free(all);
    double opt = grads * (tr->opt.kind == OPT_ADAMW ? 2.0 : 1.0) / tr->all.size; /* ZeRO-1: a shard per rank */
    double need = 4.0 * ((double)m->pt.total * (tr->ema ? 2 : 1) + grads + opt + act + scratch);
    double gib = 1024.0 * 1024 * 1024;
    if (!ops_host_memory()) { /* a GPU rank: its device's free memory (parameters and moments are already on it) */
        size_t free_now = ops_device_free(); /* 0: not known (a simulated device on the CPU) */
        double have = (double)free_now + (double)ops_mem_in_use();
        if (!free_now || need <= have) return;
        ep_die("train: the plan needs %.2f GiB on the GPU (parameters, gradients, optimizer, activations %.2f GiB, "
               "backward scratch, for the largest stage), more than the %.2f GiB free on it. Shrink it with train.batch "
               "(now %d) or train.recompute = 1 (now %d; train.recompute_blocks: how many blocks); bench_step <deck> "
               "--backend cuda --plan shows the plan",
               need / gib, 4.0 * act / gib, have / gib, tr->deck->train.batch, tr->deck->train.recompute);
    }
    MPI_Comm node;
    int local = 1;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    char source[128];
    double limit = host_limit_bytes(source, sizeof source);
    if (limit <= 0 || need * local <= limit) return;
    ep_die("train: the plan needs %.2f GiB per rank (parameters, gradients, optimizer, activations %.2f GiB, backward "
           "scratch, for the largest stage) x %d rank%s on this node = %.2f GiB, more than %.2f GiB, %s. Shrink it with "
           "train.batch (now %d) or train.recompute = 1 (now %d; train.recompute_blocks: how many blocks), or use "
           "fewer ranks per node",
           need / gib, 4.0 * act / gib, local, local > 1 ? "s" : "", need * local / gib, limit / gib, source,
           tr->deck->train.batch, tr->deck->train.recompute);
}

/* The gradient exchange: NCCL between GPU ranks when ENTPROG_COMM=nccl, else MPI (NULL). */
static struct DpNccl *open_nccl(const Trainer *tr) {
    const char *comm = getenv("ENTPROG_COMM");
    if (comm && strcmp(comm, "nccl") && strcmp(comm, "mpi"))
        ep_die("ENTPROG_COMM = '%s': expected nccl or mpi", comm);
    if (!comm || strcmp(comm, "nccl")) return NULL; /* one rank too: benchmarks/nccl_smoke.sh */
    if (ops_backend() != BACKEND_CUDA) ep_die("ENTPROG_COMM=nccl needs train.backend = cuda");
    struct DpNccl *nccl = dp_nccl_create(&tr->all);
    if (!nccl) ep_die("ENTPROG_COMM=nccl: this build has no NCCL (it was not found with the CUDA toolkit)");
    return nccl;
}

static void open_data(Trainer *tr) {
    const Deck *deck = tr->deck;
    char path[DECK_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/train.h5", deck->data.dir);
    tr->train = dataset_open(path, &deck->model, deck->data.frame_stride);
    int n = dataset_videos(tr->train), hold = prog_probe_holdout(deck, n);
    if (hold) { /* Ent-Prog's CE probe set: the last training videos, which training never draws */
        tr->probe = dataset_open(path, &deck->model, deck->data.frame_stride);
        dataset_restrict(tr->probe, n - hold, hold);
        dataset_restrict(tr->train, 0, n - hold);
    }
    snprintf(path, sizeof path, "%s/val.h5", deck->data.dir);
    tr->val = dataset_open(path, &deck->model, deck->data.frame_stride);
}

/* Model, Ent-Prog schedule, optimizer (its shard of the moments), EMA and batches. */
static void create_state(Trainer *tr) {
    const Deck *deck = tr->deck;
    const TrainConfig *tc = &deck->train;
    model_create(&tr->model, &deck->model);
    tr->model.resident = 1; /* parameters, gradients, moments and EMA live in backend memory */
    tr->model.recompute = tc->recompute;
    tr->model.recompute_blocks = tc->recompute_blocks;
    tr->mask = ep_malloc(tr->model.pt.n, "trainable mask");
    prog_init(&tr->prog, deck);
    optim_create(&tr->opt, strcmp(tc->optimizer, "sgd") == 0 ? OPT_SGD : OPT_ADAMW, &tr->model.pt);
    size_t own_lo, own_hi;
    dp_range(tr->model.pt.total, tr->all.rank, tr->all.size, &own_lo, &own_hi);
    optim_shard(&tr->opt, own_lo, own_hi);
    tr->opt.beta1 = tc->beta1, tr->opt.beta2 = tc->beta2, tr->opt.eps = tc->eps;
    tr->opt.weight_decay = tc->weight_decay, tr->opt.momentum = tc->momentum;
    if (tc->ema > 0) tr->ema = ops_alloc(tr->model.pt.total * sizeof(float), "EMA weights");
    diffusion_init(&tr->diff);
    rng_seed_stream(&tr->rng, tc->seed, STREAM_TRAIN);
}

/* The whole training state from a checkpoint (--resume). */
static void load_resume(Trainer *tr, const char *resume) {
    /* moments first: the file says which tensors have them */
    ckpt_moment_mask(resume, &tr->model.pt, tr->mask);
    optim_fit(&tr->opt, tr->mask);
    CkptState s = ckpt_state(tr);
    s.m = tr->opt.m, s.v = tr->opt.v, s.opt_off = tr->opt.off;
    HostCopies hc;
    host_copies(tr, &s, &hc, 0);
    int flags = ckpt_load(resume, &s, MPI_COMM_WORLD);
    host_copies_done(tr, &hc, 1);
    if (!(flags & CKPT_HAS_STATE) || !(flags & CKPT_HAS_OPT))
        ep_die("--resume '%s' is a weights file without training state; use train.init to start from it", resume);
    if (tr->ema && !(flags & CKPT_HAS_EMA))
        ep_die("--resume '%s' has no EMA weights but the deck sets train.ema = %g", resume, tr->deck->train.ema);
    if (s.n_rng != 1) ep_die("--resume '%s': expected 1 generator state, found %d", resume, s.n_rng);
    tr->step = s.step;
    tr->samples_seen = s.samples_seen;
    tr->bad_steps = s.bad_steps; /* a divergence streak goes on counting across a resume */
    tr->rng = s.rng[0];
    prog_ckpt_take(&tr->prog, &s, 1);
    char now[256];
    numerics_string(tr, now, sizeof now);
    if (tr->rank == 0 && s.numerics[0] && strcmp(now, s.numerics))
        ep_warn("--resume '%s' was written with %s; this run has %s: it goes on, but its results will differ from "
                "a run that never stopped", resume, s.numerics, now);
}

/* Weights (and a CEI ranking, if the file has one) from train.init. */
static void load_init(Trainer *tr, const char *init) {
    CkptState s = {.pt = &tr->model.pt, .shape = tr->deck->model, .params = tr->model.params};
    prog_ckpt_add(&tr->prog, &s, 0);
    weights_load(init, &s, MPI_COMM_WORLD); /* HDF5 or safetensors */
    prog_ckpt_take(&tr->prog, &s, 0);
}

/* metrics.csv's rows so far on disk; a failed write (a full disk) is an error naming it. */
static void metrics_flush(Trainer *tr) {
    if (!tr->metrics) return;
    if (fflush(tr->metrics) != 0 || ferror(tr->metrics))
        ep_die("cannot write '%s': %s", tr->metrics_path, strerror(errno));
}

static void open_metrics(Trainer *tr, int resuming) {
    const TrainConfig *tc = &tr->deck->train;
    char *path = tr->metrics_path;
    snprintf(path, sizeof tr->metrics_path, "%s/metrics.csv", tc->out_dir);
    tr->metrics = tr->rank == 0 ? fopen(path, resuming ? "a" : "w") : NULL; /* rank 0 logs for all */
    if (tr->rank == 0 && !tr->metrics) ep_die("cannot write '%s': %s", path, strerror(errno));
    if (tr->metrics && ftell(tr->metrics) == 0) metrics_write_header(tr->metrics);
    metrics_flush(tr);
}

static void print_start(const Trainer *tr, const char *how) {
    const Deck *deck = tr->deck;
    const TrainConfig *tc = &deck->train;
    if (tr->rank != 0) return;
    char arch[96], numerics[256];
    numerics_string(tr, numerics, sizeof numerics);
    shape_describe(&deck->model, arch, sizeof arch);
    printf("entprog train: %s, %zu parameters, backend %s, %s at step %lld, method %s\n", arch,
           tr->model.pt.total, ops_backend_name(), how, tr->step, prog_method_name(&tr->prog));
    printf("  data %s (%d train / %d val videos), batch %d x %d frames on each of %d rank%s, %d steps, out_dir %s\n",
           deck->data.dir, dataset_videos(tr->train), dataset_videos(tr->val), tc->batch, deck->model.F,
           tr->all.size, tr->all.size > 1 ? "s" : "", tc->steps, tc->out_dir);
    printf("  memory: parameters %.1f MiB, gradients %.1f MiB, optimizer %.1f MiB, activations %.1f MiB%s, "
           "backward scratch %.1f MiB\n", tr->model.pt.total * 4.0 / 1048576.0,
           tr->model.grad_cap * 4.0 / 1048576.0, tr->opt.size * 4.0 * (tr->opt.v ? 2 : 1) / 1048576.0,
           tr->model.act_floats * 4.0 / 1048576.0, !tc->recompute ? "" : tc->recompute_blocks ? " (train.recompute_blocks blocks recomputed in backward)" : " (blocks recomputed in backward)",
           tr->model.scratch_floats * 4.0 / 1048576.0);
    if (tr->prog.method->trains != TRAINS_ALL) print_most_memory(tr);
    printf("  numerics: %s\n", numerics);
    fflush(stdout);
}

void trainer_setup(Trainer *tr, const Deck *deck, const char *resume) {
    catch_stop_signals(); /* from here a stop signal is remembered and acted on at the first step boundary */
    memset(tr, 0, sizeof *tr);
    tr->deck = deck;
    tr->last_saved = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &tr->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &tr->world);
    const TrainConfig *tc = &deck->train;
    ops_select_named(tc->backend);
    dp_init(&tr->all, MPI_COMM_WORLD);
    struct DpNccl *nccl = open_nccl(tr);
    if (tr->rank == 0) printf("backend %s: %s\n", ops_backend_name(), ops_device_desc());
    open_data(tr);
    create_state(tr);
    prog_set_data(&tr->prog, dataset_drawn_videos(tr->train), tc->batch * tr->all.size); /* an epoch-long window */

    const char *how = "initialised from scratch";
    if (resume) {
        load_resume(tr, resume);
        how = "resumed";
    } else if (tc->init[0]) {
        load_init(tr, tc->init);
        how = "initialised from train.init";
    } else {
        Rng init;
        rng_seed_stream(&init, tc->seed, STREAM_INIT);
        param_init(&tr->model.pt, &deck->model, tr->model.params, &init);
    }
    model_params_written(&tr->model); /* loaded or initialised on the host: the first forward uploads */
    if (tr->ema && !resume) ops_upload(tr->ema, tr->model.params, tr->model.pt.total * sizeof(float));

    /* the trainable set of the current state (inside a supernet window: the largest candidate's), then memory for it */
    Prog *p = &tr->prog;
    prog_mask(p, &tr->model, p->searching ? prog_window_m(p) : p->m, tr->mask);
    model_set_trainable(&tr->model, tr->mask, 1);
    check_memory_fits(tr);
    batches_alloc(&tr->buf, &tr->model.shape, tc->batch);
    model_set_batch(&tr->model, tc->batch, deck->model.F);
    if (!resume) optim_fit(&tr->opt, tr->mask);
    step_comm_init(&tr->comm, &tr->all, nccl, tr->model.pt.total);
    if (p->uses_cei && !p->has_cei) stages_rank_blocks(tr, tc->init[0] ? tc->init : NULL);

    path_mkdirs(tc->out_dir, "train.out_dir");
    guard_out_dir(tr, resume != NULL);
    open_metrics(tr, resume != NULL);
    print_start(tr, how);
}

void trainer_log_row(Trainer *tr, const char *kind, double loss, double gnorm, double lr, double ms) {
    const Prog *p = &tr->prog;
    if (!tr->metrics) return;
    MetricsRow r = {.kind = kind};
    metrics_set(&r, MC_STEP, (double)tr->step);
    metrics_set(&r, MC_LOSS, loss);
    if (strcmp(kind, "val")) {
        metrics_set(&r, MC_GRAD_NORM, gnorm);
        metrics_set(&r, MC_LR, lr);
        metrics_set(&r, MC_MS_PER_STEP, ms);
        metrics_set(&r, MC_SAMPLES_PER_S, tr->model.B * tr->comm.dp.size / (ms / 1e3));
        metrics_set(&r, MC_PEAK_RSS_MIB, peak_rss_mib());
        metrics_set(&r, MC_COMM_MS, 1e3 * tr->comm_s);
    }
    metrics_set(&r, MC_STAGE, p->stage);
    metrics_set(&r, MC_M, p->m);
    metrics_set(&r, MC_MEM_PEAK_MIB, ops_mem_peak() / 1048576.0);
    metrics_set(&r, MC_TRAIN_S, p->train_s);
    static char numerics[256]; /* on this process's first row: a resume under other settings shows */
    if (!numerics[0]) {
        numerics_string(tr, numerics, sizeof numerics);
        r.text[MC_NUMERICS] = numerics;
    }
    metrics_write_row(tr->metrics, &r);
}

static void prune_ckpts(const Trainer *tr) {
    long long steps[4096];
    int n = list_ckpts(tr->deck->train.out_dir, steps, 4096);
    for (int i = 0; i + tr->deck->train.keep_ckpts < n; i++) {
        if (steps[i] >= tr->step) continue;
        char path[DECK_PATH_MAX + 32];
        ckpt_path(tr, steps[i], path, sizeof path);
        remove(path);
    }
}

/* For error messages: the newest checkpoint this run wrote, the one to resume from. */
static void newest_ckpt(const Trainer *tr, char *buf, size_t n) {
    if (tr->last_saved >= 0) ckpt_path(tr, tr->last_saved, buf, n);
    else snprintf(buf, n, "none was written");
}

/* No checkpoint holds a non-finite value: the weights (named), the EMA and
 * this rank's moments are checked first; every rank learns the verdict. */
static void refuse_nonfinite(Trainer *tr, const CkptState *s, const char *path) {
    const ParamTable *pt = &tr->model.pt;
    char what[160] = "";
    size_t i = first_nonfinite(s->params, pt->total);
    const float *ema = s->ema;
    if (i < pt->total) {
        for (int k = 0; k < pt->n; k++)
            if (i >= pt->info[k].offset && i < pt->info[k].offset + pt->info[k].numel)
                snprintf(what, sizeof what, "parameter %s", pt->info[k].name);
    } else if (ema && first_nonfinite(ema, pt->total) < pt->total) {
        snprintf(what, sizeof what, "the EMA weights");
    } else if (s->m && (first_nonfinite(s->m, tr->opt.size) < tr->opt.size ||
                        (s->v && first_nonfinite(s->v, tr->opt.size) < tr->opt.size))) {
        snprintf(what, sizeof what, "the optimizer moments");
    }
    int bad = what[0] != 0, any = bad;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!any) return;
    char last[DECK_PATH_MAX + 64];
    newest_ckpt(tr, last, sizeof last);
    if (bad) ep_die("train: not writing checkpoint '%s': %s holds a non-finite value at step %lld (the run has "
                    "diverged); the newest checkpoint: %s", path, what, tr->step, last);
    MPI_Barrier(MPI_COMM_WORLD); /* the rank that found it takes the job down */
    ep_die("train: not writing checkpoint '%s': another rank found a non-finite value", path);
}

void trainer_save(Trainer *tr) {
    char path[DECK_PATH_MAX + 32];
    ckpt_path(tr, tr->step, path, sizeof path);
    model_params_to_host(&tr->model);
    CkptState s = ckpt_state(tr);
    HostCopies hc;
    host_copies(tr, &s, &hc, 1);
    refuse_nonfinite(tr, &s, path);
    ckpt_save(path, &s, MPI_COMM_WORLD);
    host_copies_done(tr, &hc, 0);
    tr->last_saved = tr->step;
    if (tr->rank == 0) {
        if (tr->deck->train.keep_ckpts > 0) prune_ckpts(tr);
        printf("checkpoint %s\n", path);
        fflush(stdout);
    }
}

/* All ranks agree whether any got a stop signal (one rank got it: all stop);
 * returns it (the highest number when ranks got different ones), or 0. */
static int stop_requested(Trainer *tr) {
    int mine = stop_signal, any = mine;
    if (tr->all.size > 1) MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, tr->all.comm);
    return any;
}

/* A non-finite validation loss means non-finite weights: an error, before any checkpoint of them. */
static void check_val_loss(Trainer *tr, double v) {
    if (isfinite(v)) return;
    if (tr->metrics) fflush(tr->metrics);
    char last[DECK_PATH_MAX + 64];
    newest_ckpt(tr, last, sizeof last);
    ep_die("train: the validation loss at step %lld is %g (not finite): the weights have diverged; nothing of this "
           "state is saved. The newest checkpoint: %s", tr->step, v, last);
}

/* A validation: its row, its check, its line (note: said after the loss). */
static void validate(Trainer *tr, const char *note) {
    double v = trainer_validate(tr);
    trainer_log_row(tr, "val", v, 0, 0, 0);
    check_val_loss(tr, v);
    if (tr->rank == 0) printf("step %lld | val loss %.6f%s\n", tr->step, v, note);
}

/* After a step: a skipped one (non-finite loss or gradient norm on some rank,
 * the same verdict on every rank) is counted; train.max_bad_steps of them in
 * a row end the run with an error. Nothing was updated by them, so the
 * weights and every checkpoint stay finite. */
static void guard_bad_step(Trainer *tr, double loss, double gnorm) {
    if (!tr->step_skipped) {
        tr->bad_steps = 0;
        return;
    }
    tr->bad_steps++;
    const TrainConfig *tc = &tr->deck->train;
    if (tr->rank == 0)
        ep_warn("step %lld: loss %g, gradient norm %g: not finite, the update was skipped (%d in a row, "
                "train.max_bad_steps = %d)", tr->step, loss, gnorm, tr->bad_steps, tc->max_bad_steps);
    if (tr->bad_steps < tc->max_bad_steps) return;
    if (tr->metrics) fflush(tr->metrics);
    char last[DECK_PATH_MAX + 64];
    newest_ckpt(tr, last, sizeof last);
    ep_die("train: diverged: %d steps in a row up to step %lld had a non-finite loss or gradient norm (train.max_bad_steps "
           "= %d); none of them changed the weights. The newest checkpoint: %s. Try a lower train.lr, train.grad_clip > 0, "
           "or check the data", tr->bad_steps, tr->step, tc->max_bad_steps, last);
}

/* Fault injection for tests: ENTPROG_FAULT_SIGNAL_AT=N[:SIG[,SIG...]] makes
 * rank 0 raise the signals (USR1, TERM or INT; default USR1) at the start of
 * the loop's N-th iteration (0-based, counted in this process; one iteration
 * per step, or per tick of a trials search). Returns N, or -1 when unset. */
static long long fault_signal_at(int *sigs, int *n_sigs) {
    const char *v = getenv("ENTPROG_FAULT_SIGNAL_AT");
    *n_sigs = 0;
    if (!v) return -1;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || n < 0 || (*end && *end != ':'))
        ep_die("ENTPROG_FAULT_SIGNAL_AT = '%s': expected N or N:SIG[,SIG...] (N a loop iteration >= 0)", v);
    const char *p = *end ? end + 1 : "USR1";
    while (*p && *n_sigs < 4) {
        size_t len = strcspn(p, ",");
        int sig = !strncmp(p, "USR1", len) && len == 4 ? SIGUSR1 : !strncmp(p, "TERM", len) && len == 4 ? SIGTERM
                : !strncmp(p, "INT", len) && len == 3 ? SIGINT : 0;
        if (!sig) ep_die("ENTPROG_FAULT_SIGNAL_AT = '%s': signals are USR1, TERM or INT", v);
        sigs[(*n_sigs)++] = sig;
        p += len + (p[len] == ',');
    }
    return n;
}

int trainer_run(Trainer *tr) {
    const TrainConfig *tc = &tr->deck->train;
    int fault_sigs[4], n_fault_sigs;
    long long fault_at = fault_signal_at(fault_sigs, &n_fault_sigs), iteration = 0;
    long long search_from = 0; /* the step a trials search began at */
    Progress prog;
    progress_start(&prog, "train", tc->steps - tr->step);
    long long first = tr->step;
    double ms_sum = 0;
    int in_window = 0;
    while (tr->step < tc->steps) {
        if (iteration++ == fault_at && tr->rank == 0)
            for (int k = 0; k < n_fault_sigs; k++) raise(fault_sigs[k]);
        long long before = tr->step;
        int was_trials = tr->trials != NULL;
        int stepping = stages_before_step(tr); /* a stage may begin; a search picks this step's candidate */
        if (tr->trials && !was_trials) search_from = before;
        double sec = 0, loss = 0, gnorm = 0, lr = 0;
        if (stepping) {
            double t0 = clock_s();
            loss = trainer_step(tr, &gnorm, &lr);
            sec = clock_s() - t0;
            prog_spend(&tr->prog, sec);
            const char *kind = tr->step_skipped ? "skipped" : tr->prog.searching || tr->trials ? "search" : "train";
            trainer_log_row(tr, kind, loss, gnorm, lr, 1e3 * sec);
            guard_bad_step(tr, loss, gnorm);
        }
        int in_trials = tr->trials != NULL;
        stages_after_step(tr, sec);
        if (in_trials) { /* candidates' steps: the run's own step resumes when the search ends */
            if (!tr->trials) { /* it ended with this tick: the validation and checkpoint that fell due inside it */
                if (tc->val_every > 0 && tr->step / tc->val_every != search_from / tc->val_every) {
                    validate(tr, " (after the search)");
                }
                metrics_flush(tr);
                if (tc->ckpt_every > 0 && tr->step / tc->ckpt_every != search_from / tc->ckpt_every) trainer_save(tr);
            }
            int sig = tr->trials ? stop_requested(tr) : 0;
            if (sig) {
                stages_abandon_search(tr);
                if (tr->last_saved != tr->step) trainer_save(tr);
                if (tr->rank == 0)
                    printf("train: %s inside a trials search: stopped at step %lld, where the search began, "
                           "after writing the checkpoint above; resume with --resume (it reruns the search)\n",
                           signal_name(sig), tr->step);
                progress_done(&prog);
                return 1;
            }
            continue;
        }
        ms_sum += 1e3 * sec;
        in_window++;
        if (tr->step % tc->log_every == 0 || tr->step == tc->steps) {
            double avg = ms_sum / in_window;
            progress_line(&prog, tr->step - first,
                          "step %lld/%d | loss %.6f | grad %.4f | lr %.2e | %.1f ms/step | %.2f samples/s | m %d | "
                          "mem %.0f MiB | peak %.0f MiB",
                          tr->step, tc->steps, loss, gnorm, lr, avg, tr->model.B / (avg / 1e3), tr->prog.m,
                          ops_mem_in_use() / 1048576.0, peak_rss_mib());
            ms_sum = 0, in_window = 0;
        }
        if (tc->val_every > 0 && (tr->step % tc->val_every == 0 || tr->step == tc->steps)) {
            validate(tr, "");
        }
        metrics_flush(tr);
        if ((tc->ckpt_every > 0 && tr->step % tc->ckpt_every == 0) || tr->step == tc->steps) trainer_save(tr);
        int sig = stop_requested(tr);
        if (sig && tr->step < tc->steps) {
            if (tr->last_saved != tr->step) trainer_save(tr);
            if (tr->rank == 0)
                printf("train: %s at step %lld of %d: stopped after writing the checkpoint above; "
                       "resume with --resume\n", signal_name(sig), tr->step, tc->steps);
            progress_done(&prog);
            return 1;
        }
    }
    if (tr->last_saved != tr->step) trainer_save(tr); /* a search that ran to the end */
    progress_done(&prog);
    return 0;
}

void trainer_free(Trainer *tr) {
    if (tr->metrics) fclose(tr->metrics);
    dataset_close(tr->train);
    dataset_close(tr->val);
    dataset_close(tr->probe);
    batches_free(&tr->buf);
    ops_free(tr->ema);
    dp_nccl_destroy(tr->comm.nccl);
    free(tr->mask);
    step_comm_free(&tr->comm);
    optim_destroy(&tr->opt);
    model_destroy(&tr->model);
}
