#include "train/step.h"
#include "core/clock.h"
#include "core/die.h"
#include "core/mem.h"
#include "mpi/dp_nccl.h"
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void step_comm_init(StepComm *c, const Dp *dp, struct DpNccl *nccl, size_t total_params) {
    c->dp = *dp;
    c->nccl = nccl;
    c->cut = ep_malloc((dp->size + 1) * sizeof(size_t), "shard cuts");
    /* reduce-scatter scratch: q slices of at most ceil(total / q) for any q <= R ranks (a trials
     * search's rank groups too): total + R floats; NCCL needs none on the host */
    c->scratch = dp->size > 1 && !nccl ? mem_alloc((total_params + dp->size) * sizeof(float), "communication scratch")
                                       : NULL;
    const char *ov = getenv("ENTPROG_COMM_OVERLAP");
    if (ov && strcmp(ov, "0") && strcmp(ov, "1")) ep_die("ENTPROG_COMM_OVERLAP = '%s': expected 0 or 1", ov);
    c->overlap = !ov || strcmp(ov, "0") != 0;
}

void step_comm_free(StepComm *c) {
    free(c->cut);
    mem_free(c->scratch);
    c->cut = NULL, c->scratch = NULL;
}

/* The packed gradient buffer holds trainable tensors in table order, so each
 * rank's flat range of the parameter space is one contiguous packed slice:
 * cut[r] = the packed index of the first trainable element at or after the
 * start of rank r's range. */
static size_t packed_index(const Model *m, size_t flat) {
    size_t acc = 0;
    for (int i = 0; i < m->pt.n; i++) {
        const ParamInfo *p = &m->pt.info[i];
        if (p->offset + p->numel <= flat) {
            if (m->grad_off[i] != NO_GRAD) acc += p->numel;
            continue;
        }
        if (m->grad_off[i] != NO_GRAD && flat > p->offset) acc += flat - p->offset;
        return acc;
    }
    return acc;
}

/* The packed index where the gradients of tensors first.. begin. */
static size_t packed_from(const Model *m, int first) {
    for (int i = first; i < m->pt.n; i++)
        if (m->grad_off[i] != NO_GRAD) return m->grad_off[i];
    return m->grad_size;
}

static size_t *packed_cuts(const Model *m, StepComm *c) {
    for (int r = 0; r <= c->dp.size; r++) {
        size_t lo, hi;
        dp_range(m->pt.total, r < c->dp.size ? r : r - 1, c->dp.size, &lo, &hi);
        c->cut[r] = r < c->dp.size ? packed_index(m, lo) : m->grad_size;
    }
    return c->cut;
}

/* After the shard update: every rank sends its updated parameters (trainable
 * tensors only, in the packed layout, through the spent gradient buffer). */
static void share_params(Model *m, StepComm *c) {
    if (c->dp.size == 1 && !c->nccl) return; /* NCCL on one rank: the smoke test runs its calls */
    if (c->nccl) { /* the same exchange on the device copies */
        for (int i = 0; i < m->pt.n; i++)
            if (m->grad_off[i] != NO_GRAD)
                ops_copy(m->cgrads + m->grad_off[i], m->w + m->pt.info[i].offset, m->pt.info[i].numel * sizeof(float));
        dp_nccl_allgather(c->nccl, m->cgrads, c->cut);
        for (int i = 0; i < m->pt.n; i++)
            if (m->grad_off[i] != NO_GRAD)
                ops_copy(m->w + m->pt.info[i].offset, m->cgrads + m->grad_off[i], m->pt.info[i].numel * sizeof(float));
        return;
    }
    model_params_to_host(m); /* over MPI on the host */
    for (int i = 0; i < m->pt.n; i++)
        if (m->grad_off[i] != NO_GRAD)
            memcpy(m->grads + m->grad_off[i], m->params + m->pt.info[i].offset, m->pt.info[i].numel * sizeof(float));
    dp_allgather(&c->dp, m->grads, c->cut);
    for (int i = 0; i < m->pt.n; i++)
        if (m->grad_off[i] != NO_GRAD)
            memcpy(m->params + m->pt.info[i].offset, m->grads + m->grad_off[i], m->pt.info[i].numel * sizeof(float));
    model_params_written(m);
}

/* The overlapped exchange over MPI: backward says which gradients are final
 * (model.h, grads_final); those come down from a GPU and every rank's slice
 * inside them leaves for its owner while backward goes on. */
typedef struct {
    Model *m;
    DpRsAsync rs;
    size_t done; /* packed gradients [done, grad_size) are final (and on the host) */
} Overlap;

static void on_grads_final(void *ctx, int first) {
    Overlap *o = ctx;
    size_t from = packed_from(o->m, first);
    if (from >= o->done) return;
    if (!ops_host_memory()) /* waits for the backward kernels that wrote them */
        ops_download(o->m->grads + from, o->m->cgrads + from, (o->done - from) * sizeof(float));
    o->done = from;
    dp_rs_ready(&o->rs, from);
}

void train_step(Model *m, Optimizer *opt, StepComm *c, const StepInput *in, StepResult *out) {
    model_forward(m, in->batch, in->eps_hat);
    out->loss = dp_sum(&c->dp, mse_loss(in->eps_hat, in->eps, in->deps, in->n)) / c->dp.size;
    model_zero_grads(m);
    /* ZeRO-1: average the gradients into each rank's shard, update the shard, share the result */
    size_t *cut = packed_cuts(m, c), lo = cut[c->dp.rank], n_mine = cut[c->dp.rank + 1] - lo;
    /* over MPI, overlapped with backward: only where the host gradients are the exchange's
     * (a non-resident model on a GPU downloads them whole after backward) */
    int mpi = !c->nccl && c->dp.size > 1, overlap = mpi && c->overlap && (ops_host_memory() || m->resident);
    Overlap ov = {.m = m, .done = m->grad_size};
    double c0 = clock_s();
    if (overlap) {
        dp_rs_begin(&ov.rs, &c->dp, m->grads, cut, c->scratch);
        m->grads_final = on_grads_final, m->grads_final_ctx = &ov;
    }
    double b0 = clock_s();
    model_backward(m, in->batch, in->deps); /* the gradients stay in backend memory (m->cgrads) */
    double b1 = clock_s();
    m->grads_final = NULL, m->grads_final_ctx = NULL;
    if (c->nccl) {
        dp_nccl_reduce_scatter_mean(c->nccl, m->cgrads, cut);
    } else if (overlap) {
        dp_rs_finish(&ov.rs);
        ops_upload(m->cgrads + lo, m->grads + lo, n_mine * sizeof(float));
    } else if (mpi) { /* over MPI on the host, after backward */
        model_grads_to_host(m);
        dp_reduce_scatter_mean(&c->dp, m->grads, cut, c->scratch);
        ops_upload(m->cgrads + lo, m->grads + lo, n_mine * sizeof(float));
    }
    /* the exchange's time outside backward (overlapped messages hide inside it) */
    out->comm_s = clock_s() - c0 - (b1 - b0);
    out->gnorm = sqrt(dp_sum(&c->dp, op_sum_squares(m->cgrads + lo, n_mine)));
    out->skipped = !isfinite(out->loss) || !isfinite(out->gnorm);
    if (out->skipped) return; /* every rank sees the same sums: all skip together */
    optim_step(opt, m->w, m->cgrads, m->grad_off, in->lr, clip_scale(out->gnorm, in->grad_clip));
    model_params_changed_on_device(m);
    c0 = clock_s();
    share_params(m, c);
    out->comm_s += clock_s() - c0;
    if (in->ema) ema_update(in->ema, m->w, m->pt.total, in->ema_decay);
}
