/* One training step as the trainer runs it on one rank (train_step of
 * src/train/step.c: forward + MSE loss + backward + gradient norm and clip
 * (train.grad_clip) + AdamW, parameters, gradients and moments resident in backend
 * memory), timed on the deck's shape and batch on the chosen backend; model
 * FLOPs are counted from the shapes by the ops dispatcher, so MFU = FLOPs /
 * time / peak. Frozen prefixes (--freeze K: the input side and blocks
 * 0..K-1) show what Ent-Prog's stages hold at best (the trainable blocks are
 * the deepest); --blocks 3,17,5 trains exactly those blocks (and the output
 * layer, input side frozen: an Ent-Prog stage's top-m blocks of a CEI
 * ranking, wherever they are).
 *
 *   bench_step <deck> [--backend cpu|cuda] [--batch B] [--steps N] [--warmup N]
 *              [--freeze K | --blocks B1,B2,...] [--peak TFLOPS] [--plan [--infer]] [--set section.key=value]...
 * --plan prints the memory the step would hold (parameters, gradients,
 * AdamW moments, activations, backward scratch: the allocations the backend
 * makes, workspaces aside) without allocating activations or running it;
 * --plan --infer the memory of inference (sample, cei: forward passes only).
 * Otherwise prints one line: key=value pairs (ms_per_step, tflops, mem_mib, ...), then mfu_percent;
 * with ENTPROG_PROFILE=1 also a table of time per op (warm-up included). */
#include "deck/deck.h"
#include "core/blas_core.h"
#include "core/clock.h"
#include "core/die.h"
#include "core/limits.h"
#include "model/model.h"
#include "ops/ops.h"
#include "train/optim.h"
#include "train/step.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long seed = 12345;
static float frand(void) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((seed >> 40) / 16777216.0) * 2.0f - 1.0f;
}

int main(int argc, char **argv) {
    blas_core_fix(argv);
    if (argc < 2) ep_die("usage: bench_step <deck> [--backend cpu|cuda] [--batch B] [--steps N] [--warmup N] "
                         "[--freeze K] [--peak TFLOPS] [--plan [--infer]] [--set section.key=value]");
    Deck deck;
    deck_load(&deck, argv[1]);
    int B = 0, steps = 3, warmup = 1, freeze = 0, plan = 0, infer = 0;
    const char *blocks = NULL;
    double peak = 0;
    const char *backend = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--plan") || !strcmp(argv[i], "--infer")) {
            plan = 1;
            infer |= !strcmp(argv[i], "--infer");
            continue;
        }
        if (i + 1 >= argc) ep_die("bench_step: option '%s' needs a value", argv[i]);
        if (!strcmp(argv[i], "--backend")) backend = argv[++i];
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--freeze")) freeze = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--blocks")) blocks = argv[++i];
        else if (!strcmp(argv[i], "--peak")) peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "--set")) deck_override(&deck, argv[++i]);
        else ep_die("bench_step: unknown option '%s'", argv[i]);
    }
    const char *be = backend ? backend : deck.train.backend;
    if (strcmp(be, "cpu") && strcmp(be, "cuda")) ep_die("bench_step: unknown backend '%s' (expected cpu or cuda)", be);
    ops_select_named(plan ? "cpu" : be); /* a plan needs no device: the model is built on the host */
    const ModelShape *s = &deck.model;
    if (B <= 0) B = deck.train.batch;
    if (steps < 1 || warmup < 0 || freeze < 0 || freeze > s->L) ep_die("bench_step: bad --steps/--warmup/--freeze");

    Model m;
    model_create(&m, s);
    m.resident = 1;
    m.recompute = deck.train.recompute; /* --set train.recompute=1 [--set train.recompute_blocks=K] */
    m.recompute_blocks = deck.train.recompute_blocks;
    uint8_t *mask = calloc((size_t)m.pt.n, 1);
    for (int i = 0; i < m.pt.n; i++)
        mask[i] = freeze == 0 || (i >= m.pt.blk0 && (m.pt.info[i].block < 0 || m.pt.info[i].block >= freeze));
    if (blocks) { /* exactly these blocks and the output layer (prog_mask's top-m form) */
        if (freeze) ep_die("bench_step: --freeze and --blocks exclude each other");
        uint8_t on[EP_MAX_BLOCKS] = {0};
        for (const char *q = blocks; *q;) {
            char *end;
            long b = strtol(q, &end, 10);
            if (end == q || b < 0 || b >= s->L) ep_die("bench_step: --blocks '%s': block indices in 0..%d", blocks, s->L - 1);
            on[b] = 1;
            q = *end == ',' ? end + 1 : end;
            if (*end && *end != ',') ep_die("bench_step: --blocks '%s': comma-separated indices", blocks);
        }
        for (int i = 0; i < m.pt.n; i++) {
            int b = m.pt.info[i].block;
            mask[i] = i >= m.pt.blk0 && (b < 0 ? i >= m.pt.f_ada_w : on[b]);
        }
    }
    model_set_trainable(&m, mask, 1);
    size_t act, scratch, G = 1u << 30;
    if (plan) ops_assume(strcmp(be, "cuda") ? BACKEND_CPU : BACKEND_CUDA); /* the sizes that backend's kernels need */
    m.forward_only = infer;
    model_plan(&m, B, s->F, &act, &scratch);
    m.forward_only = 0;
    size_t pb = m.pt.total * 4, gb = infer ? 0 : m.grad_size * 4, ob = 2 * gb, ab = act * 4, sb = scratch * 4;
    size_t planned = pb + gb + ob + ab + sb;
    if (plan) {
        ops_assume(BACKEND_CPU);
        printf("plan%s backend=%s B=%d F=%d S=%d D=%d L=%d freeze=%d blocks=%s first_bwd=%d recompute=%d recompute_blocks=%d params_gib=%.2f grads_gib=%.2f moments_gib=%.2f "
               "acts_gib=%.2f scratch_gib=%.2f total_gib=%.2f total_gb=%.2f\n",
               infer ? " (inference)" : "", be, B, s->F, shape_S(s), s->D, s->L, freeze, blocks ? blocks : "-", m.first_bwd,
               m.recompute, m.recompute_blocks, (double)pb / G, (double)gb / G, (double)ob / G,
               (double)ab / G, (double)sb / G, (double)planned / G, (double)planned / 1e9);
        free(mask);
        model_destroy(&m);
        return 0;
    }
    model_set_batch(&m, B, s->F);
    for (size_t i = 0; i < m.pt.total; i++) m.params[i] = 0.02f * frand();
    model_params_written(&m);
    Optimizer opt;
    optim_create(&opt, OPT_ADAMW, &m.pt);
    opt.beta1 = 0.9, opt.beta2 = 0.999, opt.eps = 1e-8, opt.weight_decay = 0.01;
    optim_fit(&opt, mask);
    free(mask);

    size_t img = (size_t)s->C * s->H * s->W, pimg = (size_t)s->Cp * s->s * s->H * s->s * s->W;
    size_t nx = (size_t)B * s->F * img;
    float *x = malloc(nx * 4), *eps = malloc(nx * 4), *out = malloc(nx * 4), *deps = malloc(nx * 4);
    float *ref = malloc((size_t)B * img * 4), *pose = malloc((size_t)B * s->F * pimg * 4);
    int *t = malloc((size_t)B * sizeof(int));
    uint8_t *drop = calloc((size_t)B, 1);
    if (!x || !eps || !out || !deps || !ref || !pose || !t || !drop) ep_die("bench_step: out of host memory");
    for (size_t i = 0; i < nx; i++) x[i] = frand(), eps[i] = frand();
    for (size_t i = 0; i < (size_t)B * img; i++) ref[i] = frand();
    for (size_t i = 0; i < (size_t)B * s->F * pimg; i++) pose[i] = 0.5f + 0.5f * frand();
    for (int i = 0; i < B; i++) t[i] = 100 + 37 * i;
    Batch b = {x, t, ref, pose, drop, drop};
    StepComm comm;
    step_comm_init(&comm, &(Dp){MPI_COMM_NULL, 0, 1}, NULL, m.pt.total); /* one rank: no exchange, no MPI */
    StepInput in = {&b, eps, out, deps, nx, 1e-4, deck.train.grad_clip, NULL, 0};

    double t0 = 0, f0 = 0, loss = 0;
    for (int it = 0; it < warmup + steps; it++) {
        if (it == warmup) {
            ops_sync();
            t0 = clock_s();
            f0 = ops_flops();
        }
        StepResult r;
        train_step(&m, &opt, &comm, &in, &r); /* the trainer's step, on one rank */
        loss = r.loss;
    }
    ops_sync();
    double dt = (clock_s() - t0) / steps, fl = (ops_flops() - f0) / steps;
    double tf = fl / dt / 1e12;
    printf("backend=%s B=%d F=%d S=%d D=%d L=%d freeze=%d recompute=%d params=%zu trainable=%zu ms_per_step=%.1f "
           "gflop_per_step=%.1f tflops=%.2f mem_mib=%.0f plan_mib=%.0f loss=%.5f device=\"%s\"\n",
           ops_backend_name(), B, s->F, shape_S(s), s->D, s->L, freeze, m.recompute, m.pt.total, m.grad_size, 1e3 * dt, fl / 1e9, tf,
           ops_mem_peak() / 1048576.0, (double)planned / 1048576.0, loss, ops_device_desc());
    if (peak > 0) printf("mfu_percent=%.1f (against %.0f TFLOP/s)\n", 100 * tf / peak, peak);
    ops_profile_report(stdout); /* ENTPROG_PROFILE=1: where the passes' time went, per op */
    step_comm_free(&comm);
    optim_destroy(&opt);
    model_destroy(&m);
    return isfinite(loss) ? 0 : 1;
}
