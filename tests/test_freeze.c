/* Freezing and the Ent-Prog schedule, in process:
 *  - a frozen tensor has no gradient buffer (grad_off NO_GRAD) and the
 *    gradient allocation holds exactly the trainable tensors;
 *  - backward with blocks frozen gives the trainable tensors the same
 *    gradients as the all-trainable backward (to 1e-6 relative: the same
 *    products, only the skipped ones are gone) and stops at the earliest
 *    trainable block, whose predecessors keep no activations;
 *  - optimizer moments exist only for kept tensors, survive a refit, and an
 *    update leaves frozen parameters bit-identical;
 *  - the search keeps the candidate with the highest CE (ties: smaller m) on
 *    constructed values; candidate sets never go below the current m;
 *    masks follow the order; linear grows by equal steps. */
#include "deck/deck.h"
#include "train/entprog.h"
#include "model/model.h"
#include "train/optim.h"
#include "core/rng.h"
#include "core/mem.h"
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fails;
#define CHECK(c, ...) do { printf("%s ", (c) ? "ok  " : "FAIL"); printf(__VA_ARGS__); printf("\n"); if (!(c)) fails++; } while (0)

static void fill(float *x, size_t n, Rng *r, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * rng_uniform(r) - 1.0f);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    ModelShape s = {.F = 2, .C = 3, .H = 8, .W = 8, .p = 2, .D = 16, .NH = 2, .L = 4, .mlp_ratio = 2, .Cp = 3, .s = 2, .Cg = 4};
    int B = 2;
    Rng r;
    rng_seed(&r, 7);
    Model m;
    model_create(&m, &s);
    fill(m.params, m.pt.total, &r, 0.3f);
    size_t plan_a, plan_s;
    model_plan(&m, B, s.F, &plan_a, &plan_s); /* what bench_step --plan reports */
    model_set_batch(&m, B, s.F);
    CHECK(plan_a == m.act_floats && plan_s == m.scratch_floats,
          "the memory plan is what model_set_batch allocates (%zu/%zu vs %zu/%zu floats)", plan_a, plan_s,
          m.act_floats, m.scratch_floats);
    size_t nx = (size_t)B * s.F * s.C * s.H * s.W, np = (size_t)B * s.F * s.Cp * 16 * 16;
    float *x = malloc(nx * 4), *eps = malloc(nx * 4), *eh = malloc(nx * 4), *de = malloc(nx * 4);
    float *ref = malloc((size_t)B * s.C * s.H * s.W * 4), *pose = malloc(np * 4);
    fill(x, nx, &r, 1), fill(eps, nx, &r, 1), fill(ref, (size_t)B * s.C * s.H * s.W, &r, 1), fill(pose, np, &r, 0.5f);
    int t[2] = {100, 900};
    uint8_t dr[2] = {0, 0}, dp[2] = {0, 0};
    Batch batch = {x, t, ref, pose, dr, dp};

    /* all trainable: reference gradients */
    model_forward(&m, &batch, eh);
    mse_loss(eh, eps, de, nx);
    memset(m.grads, 0, m.grad_size * 4);
    model_backward(&m, &batch, de);
    float *full = malloc(m.pt.total * 4);
    memcpy(full, m.grads, m.pt.total * 4); /* dense: grad_off == param offset */
    size_t full_acts = m.act_floats, full_scratch = m.scratch_floats;

    /* freeze blocks 0 and 1 and the input side: blocks 2, 3 and the final layer train */
    uint8_t *mask = calloc(m.pt.n, 1);
    size_t want = 0;
    for (int i = 0; i < m.pt.n; i++) {
        int b = m.pt.info[i].block;
        mask[i] = b >= 2 || i >= m.pt.f_ada_w;
        if (mask[i]) want += m.pt.info[i].numel;
    }
    model_set_trainable(&m, mask, 1);
    int no_buffer = 1;
    for (int i = 0; i < m.pt.n; i++) no_buffer &= mask[i] ? m.grad_off[i] != NO_GRAD : m.grad_off[i] == NO_GRAD;
    CHECK(no_buffer, "frozen tensors have no gradient slot, trainable ones do");
    CHECK(m.grad_size == want && m.grad_cap == want, "gradient memory = the trainable tensors only (%zu of %zu floats)",
          m.grad_size, m.pt.total);
    CHECK(m.first_bwd == 2 && !m.input_grads, "backward stops at block 2 (first_bwd %d)", m.first_bwd);
    CHECK(m.act_floats < full_acts, "blocks 0-1 keep no activations: %zu -> %zu floats", full_acts, m.act_floats);
    model_plan(&m, B, s.F, &plan_a, &plan_s);
    CHECK(plan_a == m.act_floats && plan_s == m.scratch_floats, "the plan with blocks 0-1 frozen is what is allocated");
    {
        uint8_t *ones = malloc(m.pt.n);
        memset(ones, 1, m.pt.n);
        size_t g_all;
        model_plan_mask(&m, ones, B, s.F, &plan_a, &plan_s, &g_all);
        CHECK(plan_a == full_acts && plan_s == full_scratch && g_all == m.pt.total,
              "planned from the frozen model, all trainable: the all-trainable allocation");
        CHECK(m.grad_size == want && m.first_bwd == 2, "and the model itself is unchanged");
        free(ones);
    }

    float *eh2 = malloc(nx * 4);
    model_forward(&m, &batch, eh2);
    CHECK(memcmp(eh, eh2, nx * 4) == 0, "freezing does not change the forward pass");
    memset(m.grads, 0, m.grad_size * 4);
    model_backward(&m, &batch, de);
    double worst = 0;
    for (int i = 0; i < m.pt.n; i++) {
        if (!mask[i]) continue;
        const ParamInfo *p = &m.pt.info[i];
        double mx = 0, err = 0;
        for (size_t j = 0; j < p->numel; j++) {
            mx = fmax(mx, fabs(full[p->offset + j]));
            err = fmax(err, fabs(full[p->offset + j] - m.grads[m.grad_off[i] + j]));
        }
        if (mx > 0) worst = fmax(worst, err / mx);
    }
    CHECK(worst < 1e-6, "trainable gradients equal the all-trainable backward's (worst rel %.2e)", worst);

    /* optimizer: moments only where kept; a refit keeps them; frozen params untouched */
    Optimizer o;
    optim_create(&o, OPT_ADAMW, &m.pt);
    o.beta1 = 0.9, o.beta2 = 0.999, o.eps = 1e-8;
    optim_fit(&o, mask);
    CHECK(o.size == want, "moments for the trainable tensors only (%zu floats)", o.size);
    float *before = malloc(m.pt.total * 4);
    memcpy(before, m.params, m.pt.total * 4);
    optim_step(&o, m.params, m.grads, m.grad_off, 1e-3, 1.0f);
    int frozen_same = 1, trained_moved = 0;
    for (int i = 0; i < m.pt.n; i++) {
        const ParamInfo *p = &m.pt.info[i];
        int same = memcmp(before + p->offset, m.params + p->offset, p->numel * 4) == 0;
        if (!mask[i]) frozen_same &= same;
        else trained_moved += !same;
    }
    CHECK(frozen_same, "an update leaves every frozen tensor bit-identical");
    CHECK(trained_moved > 0, "and moves the trainable ones (%d tensors)", trained_moved);
    int idx = m.pt.blk0 + 2 * BP_COUNT + BP_FC1_W;
    float m_before = o.m[o.off[idx]];
    uint8_t *grow = malloc(m.pt.n);
    memcpy(grow, mask, m.pt.n);
    for (int k = 0; k < BP_COUNT; k++) grow[m.pt.blk0 + 1 * BP_COUNT + k] = 1;
    /* the refit at a stage boundary never holds the old and the new moments
     * together: with the (dead) gradient buffer carrying the kept moments,
     * the allocator's peak over the refit is the larger of before and after */
    mem_reset_peak();
    size_t in_before = mem_in_use();
    optim_refit(&o, grow, m.cgrads, m.grad_cap);
    size_t in_after = mem_in_use(), most = in_before > in_after ? in_before : in_after;
    CHECK(mem_peak() == most, "a growing refit peaks at max(before, after) = %zu bytes (peak %zu; old + new moments "
          "would be %zu)", most, mem_peak(), in_before + 2 * o.size * sizeof(float));
    CHECK(o.m[o.off[idx]] == m_before && o.t[idx] == 1, "unfreezing block 1 keeps block 2's moments and count");
    {
        /* without scratch a temporary of the kept moments carries them: still less than old + new */
        uint8_t *all = malloc(m.pt.n);
        memset(all, 1, m.pt.n);
        size_t old_bytes = 2 * o.size * sizeof(float);
        float kept = o.m[o.off[idx]];
        mem_reset_peak();
        in_before = mem_in_use();
        optim_fit(&o, all);
        CHECK(mem_peak() < in_before + 2 * o.size * sizeof(float) && o.m[o.off[idx]] == kept,
              "without scratch: peak %zu < old + new %zu, moments kept", mem_peak() - (in_before - old_bytes),
              old_bytes + 2 * o.size * sizeof(float));
        optim_refit(&o, grow, m.cgrads, m.grad_cap); /* back to the grown set: shrinking keeps block 2 too */
        CHECK(o.m[o.off[idx]] == kept && o.size < m.pt.total, "a shrinking refit keeps the kept moments");
        free(all);
    }
    CHECK(o.m[o.off[m.pt.blk0 + BP_COUNT]] == 0 && o.t[m.pt.blk0 + BP_COUNT] == 0, "block 1 starts with zero moments");

    /* the input side starts to train while block 0 already does (act_first
     * stays 0): the backward scratch must grow by the pose guider's buffers */
    {
        Model mi;
        model_create(&mi, &s);
        memcpy(mi.params, before, m.pt.total * 4); /* the parameters of the all-trainable pass */
        uint8_t *blocks = malloc(m.pt.n), *all = malloc(m.pt.n);
        for (int i = 0; i < m.pt.n; i++) blocks[i] = i >= m.pt.blk0, all[i] = 1;
        model_set_trainable(&mi, blocks, 1);
        model_set_batch(&mi, B, s.F);
        size_t small = mi.scratch_floats;
        CHECK(!mi.input_grads && !mi.g.dpg_a, "input side frozen: no pose-guider backward scratch");
        model_set_trainable(&mi, all, 0);
        CHECK(mi.g.dpg_a && mi.scratch_floats > small, "it trains: the scratch grows (%zu -> %zu floats)", small,
              mi.scratch_floats);
        model_forward(&mi, &batch, eh2);
        memset(mi.grads, 0, mi.grad_size * 4);
        model_backward(&mi, &batch, de);
        double e = 0, mx = 0;
        for (size_t j = 0; j < m.pt.total; j++) e = fmax(e, fabs(mi.grads[j] - full[j])), mx = fmax(mx, fabs(full[j]));
        CHECK(e <= 1e-6 * mx, "and its gradients are the all-trainable run's (max diff %.2e)", e);
        free(blocks), free(all);
        model_destroy(&mi);
    }

    /* the schedule's logic */
    Deck d;
    deck_parse_string(&d, "[model]\nL = 6\nF = 2\n[train]\nsteps = 400\n[entprog]\nmethod = entprog\nstages = 4\n", "test");
    Prog p;
    prog_init(&p, &d);
    CHECK(p.n_grid == 4 && p.grid[0] == 2 && p.grid[1] == 3 && p.grid[2] == 5 && p.grid[3] == 6,
          "default grid ceil(L j / K) = {2, 3, 5, 6}");
    int cand[PROG_MAX_CAND], n = prog_candidates(&p, 0, 0, cand);
    CHECK(n == 3 && cand[0] == 2 && cand[2] == 5, "stage 0 candidates {2, 3, 5}");
    n = prog_candidates(&p, 2, 5, cand);
    CHECK(n == 2 && cand[0] == 5 && cand[1] == 6, "later candidates start at the current m: {5, 6}");
    p.n_cand = 3;
    double ce[3] = {0.5, 0.9, 0.2};
    CHECK(prog_pick(&p, ce) == 1, "the highest CE wins");
    double tie[3] = {0.7, 0.7, 0.1};
    CHECK(prog_pick(&p, tie) == 0, "a tie goes to the smaller m");
    double cei[6] = {0.1, 0.5, -0.2, 0.3, 0.0, 0.4};
    int order[6] = {1, 5, 3, 0, 4, 2};
    prog_set_order(&p, cei, order);
    Model m6;
    ModelShape s6 = d.model;
    model_create(&m6, &s6);
    uint8_t *mk = malloc(m6.pt.n);
    prog_mask(&p, &m6, 2, mk);
    int ok = 1;
    for (int b = 0; b < 6; b++) ok &= mk[m6.pt.blk0 + b * BP_COUNT] == (b == 1 || b == 5);
    ok &= mk[m6.pt.f_lin_w] && !mk[m6.pt.x_w];
    CHECK(ok, "top-2 mask = blocks 1 and 5 + the output layer, input side frozen");
    Deck dl;
    deck_parse_string(&dl, "[model]\nL = 6\nF = 2\n[train]\nsteps = 400\n[entprog]\nmethod = linear\nstages = 3\n", "test");
    Prog pl;
    prog_init(&pl, &dl);
    CHECK(prog_fixed_m(&pl, 0) == 2 && prog_fixed_m(&pl, 1) == 4 && prog_fixed_m(&pl, 2) == 6, "linear: 2, 4, 6");
    /* the orders that are not CEI's stay their own, whatever ranking is set
     * (a checkpoint or train.init holding one): random and depth are "w/o CEI" */
    {
        const char *base = "[model]\nL = 6\nF = 2\n[train]\nsteps = 400\n[entprog]\nstages = 4\nsearch_steps = 10\n";
        char text[512];
        int want_depth[6] = {5, 4, 3, 2, 1, 0}, rank[6] = {1, 5, 3, 0, 4, 2};
        double sc[6] = {0};
        Prog q;
        Deck dq;
        snprintf(text, sizeof text, "%smethod = depth\n", base);
        deck_parse_string(&dq, text, "test");
        prog_init(&q, &dq);
        prog_set_order(&q, sc, rank);
        CHECK(!memcmp(q.order, want_depth, sizeof want_depth), "depth: deepest block first after a CEI ranking is set "
              "(%d %d %d ...)", q.order[0], q.order[1], q.order[2]);
        int seen[6] = {0}, same_as_cei = 1, perm = 1, differ = 0;
        int first_order[6];
        for (int seed = 1; seed <= 2; seed++) {
            snprintf(text, sizeof text, "%smethod = random\nseed = %d\n", base, seed);
            deck_parse_string(&dq, text, "test");
            prog_init(&q, &dq);
            int before[6];
            memcpy(before, q.order, sizeof before);
            prog_set_order(&q, sc, rank);
            same_as_cei &= !memcmp(q.order, rank, sizeof rank);
            perm &= !memcmp(q.order, before, sizeof before);
            if (seed == 1) memcpy(first_order, q.order, sizeof first_order);
            else differ = memcmp(first_order, q.order, sizeof first_order) != 0;
            memset(seen, 0, sizeof seen);
            for (int b = 0; b < 6; b++) seen[q.order[b]]++;
            for (int b = 0; b < 6; b++) perm &= seen[b] == 1;
        }
        CHECK(perm && !same_as_cei && differ, "random: its own seeded permutation (differs between seeds), kept "
              "when a CEI ranking is set");
        snprintf(text, sizeof text, "%smethod = entprog\nreverse = 1\n", base);
        deck_parse_string(&dq, text, "test");
        prog_init(&q, &dq);
        prog_set_order(&q, sc, rank);
        int rev = 1;
        for (int b = 0; b < 6; b++) rev &= q.order[b] == rank[5 - b];
        CHECK(rev, "reverse = 1: the CEI ranking backwards");
        snprintf(text, sizeof text, "%smethod = depth\nreverse = 1\n", base);
        deck_parse_string(&dq, text, "test");
        prog_init(&q, &dq);
        rev = 1;
        for (int b = 0; b < 6; b++) rev &= q.order[b] == b;
        CHECK(rev, "depth with reverse = 1: shallowest first");

        /* the supernet draw: i.i.d. uniform by default, balanced on request */
        for (int bal = 0; bal <= 1; bal++) {
            snprintf(text, sizeof text, "%smethod = entprog\nsampling = %s\n", base, bal ? "balanced" : "uniform");
            deck_parse_string(&dq, text, "test");
            prog_init(&q, &dq);
            q.n_cand = 3, q.cand[0] = 2, q.cand[1] = 3, q.cand[2] = 5;
            for (int c = 0; c < 3; c++) q.count[c] = 0;
            Rng rr;
            rng_seed(&rr, 3);
            int most_apart = 0, n = 3000;
            for (int i = 0; i < n; i++) {
                int mm = prog_supernet_draw(&q, &rr), c = mm == 2 ? 0 : mm == 3 ? 1 : 2;
                q.count[c] += 1;
                double lo = fmin(q.count[0], fmin(q.count[1], q.count[2])), hi = fmax(q.count[0], fmax(q.count[1], q.count[2]));
                if (hi - lo > most_apart) most_apart = (int)(hi - lo);
            }
            int even = 1;
            for (int c = 0; c < 3; c++) even &= fabs(q.count[c] / n - 1.0 / 3) < 0.03;
            if (bal) CHECK(most_apart <= 1 && even, "balanced draw: counts never more than 1 apart");
            else CHECK(most_apart >= 10 && even, "uniform draw: i.i.d. (counts drift %d apart, each near 1/3)", most_apart);
        }

        /* CE and its standard error from the kept sums equal a direct computation */
        snprintf(text, sizeof text, "%smethod = entprog\n", base);
        deck_parse_string(&dq, text, "test");
        prog_init(&q, &dq);
        q.n_cand = 1, q.cand[0] = 2, q.m = 2, q.probe_last = 1.0, q.searching = 1, q.search_end = 100;
        double d[5] = {0.03, 0.01, 0.02, -0.005, 0.015}, cs[5] = {7, 7, 8, 7, 9}, loss = 1.0, ce1, se1, sd = 0, sc2 = 0;
        for (int i = 0; i < 5; i++) {
            loss -= d[i];
            prog_supernet_account(&q, loss, cs[i], i + 1, &ce1, &se1);
            sd += d[i], sc2 += cs[i];
        }
        prog_ce(&q, 0, &ce1, &se1);
        double r0 = sd / sc2, ss = 0;
        for (int i = 0; i < 5; i++) ss += (d[i] - r0 * cs[i]) * (d[i] - r0 * cs[i]);
        double se0 = sqrt(5.0 / 4.0 * ss) / sc2;
        CHECK(fabs(ce1 - r0) < 1e-12 && fabs(se1 - se0) < 1e-12 * fmax(1, se0),
              "CE %.6g and its standard error %.3g from the running sums", ce1, se1);
    }
    printf("%s\n", fails ? "FAILED" : "all freeze checks passed");
    MPI_Finalize();
    return fails != 0;
}
