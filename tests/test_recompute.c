/* Activation recomputation (train.recompute = 1) against keeping every
 * activation, in process on the CPU: the same parameters and batch give
 * bit-identical eps_hat and gradients (every block's video forward reruns
 * with the same ops on the same inputs), all tensors trainable and with a
 * frozen prefix, with a dropped reference in the batch; the activation
 * memory is smaller and equals the plan; the recomputed forward adds no
 * model FLOPs. The same when only some blocks recompute
 * (train.recompute_blocks), into the last block's activations. */
#include "model/model.h"
#include "ops/ops.h"
#include "core/rng.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fails;
#define CHECK(c, ...) do { printf("%s ", (c) ? "ok  " : "FAIL"); printf(__VA_ARGS__); printf("\n"); if (!(c)) fails++; } while (0)

static void fill(float *x, size_t n, Rng *r, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * rng_uniform(r) - 1.0f);
}

typedef struct {
    float *eps_hat, *grads;
    size_t act_floats, grad_size;
    double flops;
} Pass;

/* One forward and backward of a fresh model: frozen blocks 0..frozen-1 and the input side when frozen > 0. */
static Pass run(const ModelShape *s, int recompute, int blocks, int frozen, const Batch *in, int B, const float *deps) {
    Model m;
    model_create(&m, s);
    Rng r;
    rng_seed(&r, 7);
    fill(m.params, m.pt.total, &r, 0.3f);
    m.recompute = recompute;
    m.recompute_blocks = blocks;
    uint8_t *mask = calloc(m.pt.n, 1);
    for (int i = 0; i < m.pt.n; i++) mask[i] = frozen == 0 || m.pt.info[i].block >= frozen || i >= m.pt.f_ada_w;
    model_set_trainable(&m, mask, 1);
    free(mask);
    size_t plan_a, plan_s;
    model_plan(&m, B, s->F, &plan_a, &plan_s);
    model_set_batch(&m, B, s->F);
    CHECK(plan_a == m.act_floats, "recompute %d (blocks %d), frozen %d: the plan is the allocation (%zu floats)",
          recompute, blocks, frozen, m.act_floats);
    size_t nx = (size_t)B * s->F * s->C * s->H * s->W;
    Pass p = {malloc(nx * 4), NULL, m.act_floats, m.grad_size, 0};
    model_forward(&m, in, p.eps_hat);
    model_zero_grads(&m);
    double f0 = ops_flops();
    model_backward(&m, in, deps);
    p.flops = ops_flops() - f0;
    p.grads = malloc(m.grad_size * 4);
    memcpy(p.grads, m.grads, m.grad_size * 4);
    model_destroy(&m);
    return p;
}

int main(void) {
    ModelShape s = {.F = 3, .C = 3, .H = 8, .W = 8, .p = 2, .D = 16, .NH = 2, .L = 4, .mlp_ratio = 2, .Cp = 3, .s = 2, .Cg = 4};
    int B = 2;
    Rng r;
    rng_seed(&r, 11);
    size_t nx = (size_t)B * s.F * s.C * s.H * s.W, np = (size_t)B * s.F * s.Cp * 16 * 16;
    float *x = malloc(nx * 4), *de = malloc(nx * 4), *ref = malloc((size_t)B * s.C * s.H * s.W * 4), *pose = malloc(np * 4);
    fill(x, nx, &r, 1), fill(de, nx, &r, 1), fill(ref, (size_t)B * s.C * s.H * s.W, &r, 1), fill(pose, np, &r, 0.5f);
    int t[2] = {100, 900};
    uint8_t dr[2] = {0, 1}, dp[2] = {0, 0}; /* the second sample's reference dropped */
    Batch in = {x, t, ref, pose, dr, dp};

    for (int frozen = 0; frozen <= 2; frozen += 2) {
        Pass keep = run(&s, 0, 0, frozen, &in, B, de), rec = run(&s, 1, 0, frozen, &in, B, de);
        CHECK(!memcmp(keep.eps_hat, rec.eps_hat, nx * 4), "frozen %d: eps_hat bit-identical", frozen);
        CHECK(keep.grad_size == rec.grad_size && !memcmp(keep.grads, rec.grads, keep.grad_size * 4),
              "frozen %d: all %zu gradient values bit-identical", frozen, keep.grad_size);
        CHECK(rec.act_floats < keep.act_floats, "frozen %d: activations %zu -> %zu floats", frozen, keep.act_floats,
              rec.act_floats);
        CHECK(rec.flops == keep.flops, "frozen %d: backward counts the same model FLOPs (%.0f)", frozen, rec.flops);
        /* only K blocks recompute (those before the last one, into its activations): fewer than backward reaches */
        int K = (s.L - frozen) / 2;
        Pass part = run(&s, 1, K, frozen, &in, B, de);
        CHECK(!memcmp(keep.eps_hat, part.eps_hat, nx * 4) && keep.grad_size == part.grad_size &&
                  !memcmp(keep.grads, part.grads, keep.grad_size * 4),
              "frozen %d, %d blocks recompute: eps_hat and every gradient bit-identical", frozen, K);
        CHECK(part.act_floats < keep.act_floats && part.act_floats != rec.act_floats,
              "frozen %d, %d blocks recompute: activations %zu, less than %zu (none; all: %zu)", frozen, K,
              part.act_floats, keep.act_floats, rec.act_floats);
        CHECK(part.flops == keep.flops, "frozen %d, %d blocks recompute: the same model FLOPs", frozen, K);
        free(part.eps_hat), free(part.grads);
        free(keep.eps_hat), free(keep.grads), free(rec.eps_hat), free(rec.grads);
    }
    free(x), free(de), free(ref), free(pose);
    printf("%s\n", fails ? "FAILED" : "all passed");
    return fails ? 1 : 0;
}
