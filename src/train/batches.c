/* What a run feeds the model: training batches (trainer_step), and the
 * fixed validation and probe sets. */
#include "train/trainer.h"
#include "core/die.h"
#include "core/mem.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

void batches_alloc(BatchBuffers *b, const ModelShape *s, int B) {
    size_t x = (size_t)B * s->F * s->C * s->H * s->W;
    size_t pose = (size_t)B * s->F * s->Cp * (s->s * s->H) * (s->s * s->W);
    b->x0 = mem_alloc(x * sizeof(float), "batch");
    b->x = mem_alloc(x * sizeof(float), "batch");
    b->eps = mem_alloc(x * sizeof(float), "batch");
    b->eps_hat = mem_alloc(x * sizeof(float), "batch");
    b->deps = mem_alloc(x * sizeof(float), "batch");
    b->ref = mem_alloc((size_t)B * s->C * s->H * s->W * sizeof(float), "batch");
    b->pose = mem_alloc(pose * sizeof(float), "batch");
    b->t = ep_malloc((size_t)B * sizeof(int), "batch");
    b->drop_ref = ep_malloc(B, "batch");
    b->drop_pose = ep_malloc(B, "batch");
}

void batches_free(BatchBuffers *b) {
    mem_free(b->x0), mem_free(b->x), mem_free(b->eps), mem_free(b->eps_hat), mem_free(b->deps);
    mem_free(b->ref), mem_free(b->pose), free(b->t), free(b->drop_ref), free(b->drop_pose);
}

/* One batch of B training tuples (clip, reference, pose, t, noise, dropout).
 * The caller's stream gives one key per batch whatever the number of ranks;
 * global sample g of the batch then draws its clip, t, dropout and noise
 * from its own stream (key, g). So a rank draws only its own B samples
 * (slice `slice` of the global batch), and R ranks see exactly the samples
 * one rank would with a batch of R*B. slice -1: only advance the stream. */
static void draw_batch(Trainer *tr, Dataset *ds, Rng *rng, double p_ref, double p_pose, int slice) {
    const ModelShape *s = &tr->model.shape;
    BatchBuffers *b = &tr->buf;
    int B = tr->model.B, F = s->F;
    size_t clip = (size_t)F * s->C * s->H * s->W, frame = (size_t)s->C * s->H * s->W;
    size_t pclip = (size_t)F * s->Cp * (s->s * s->H) * (s->s * s->W);
    uint64_t key = rng_next(rng);
    if (slice < 0) return;
    for (int i = 0; i < B; i++) {
        Rng r;
        rng_seed_stream(&r, key, (uint64_t)slice * B + i);
        int video, start, ref_frame;
        dataset_pick(ds, &r, F, &video, &start, &ref_frame);
        dataset_read_clip(ds, video, start, F, b->x0 + i * clip, b->pose + i * pclip);
        dataset_read_frame(ds, video, ref_frame, b->ref + i * frame);
        b->t[i] = (int)rng_below(&r, DIFFUSION_T);
        b->drop_ref[i] = rng_uniform(&r) < p_ref;
        b->drop_pose[i] = rng_uniform(&r) < p_pose;
        for (size_t j = 0; j < clip; j++) b->eps[i * clip + j] = rng_normal(&r);
    }
    diffusion_noise(&tr->diff, b->x, b->x0, b->eps, b->t, B, clip);
}

static Batch as_batch(const BatchBuffers *b) {
    return (Batch){b->x, b->t, b->ref, b->pose, b->drop_ref, b->drop_pose};
}

static size_t x_numel(const Trainer *tr) {
    const ModelShape *s = &tr->model.shape;
    return (size_t)tr->model.B * s->F * s->C * s->H * s->W;
}

double trainer_step(Trainer *tr, double *gnorm, double *lr_used) {
    const TrainConfig *tc = &tr->deck->train;
    draw_batch(tr, tr->train, &tr->rng, tc->p_drop_ref, tc->p_drop_pose, tr->comm.dp.rank);
    Batch batch = as_batch(&tr->buf);
    double lr = lr_at(tr->step, tc->lr, tc->warmup, strcmp(tc->lr_schedule, "cosine") == 0, tc->min_lr, tc->steps);
    StepInput in = {&batch, tr->buf.eps, tr->buf.eps_hat, tr->buf.deps, x_numel(tr), lr, tc->grad_clip, tr->ema, tc->ema};
    StepResult r;
    train_step(&tr->model, &tr->opt, &tr->comm, &in, &r);
    tr->comm_s = r.comm_s;
    tr->step_skipped = r.skipped;
    tr->step++;
    tr->samples_seen += tr->model.B;
    *gnorm = r.gnorm;
    *lr_used = lr;
    return r.loss;
}

/* The validation set's key: a constant, so its clips, t and noise depend
 * only on the validation split (and B, R, val_batches), never on
 * train.seed; runs of different seeds are validated on the same samples. */
#define VAL_SET_KEY 0x76616c5f736574ull

/* Mean loss over `batches` batches drawn from a freshly seeded stream (key):
 * the same clips, t and noise every call. Validation batches are global
 * (each rank its slice of R*B samples); probe batches hold B samples
 * whatever R is, each evaluated by one rank in turn, so a CE search sees the
 * same probe set on any number of ranks or rank groups. */
static double fixed_set_loss(Trainer *tr, Dataset *ds, uint64_t key, uint64_t stream, int batches, int global) {
    Rng rng;
    rng_seed_stream(&rng, key, stream);
    double sum = 0;
    size_t n = x_numel(tr);
    for (int k = 0; k < batches; k++) {
        int mine = global || k % tr->comm.dp.size == tr->comm.dp.rank;
        draw_batch(tr, ds, &rng, 0.0, 0.0, global ? tr->comm.dp.rank : (mine ? 0 : -1));
        if (!mine) continue;
        Batch batch = as_batch(&tr->buf);
        model_forward(&tr->model, &batch, tr->buf.eps_hat);
        sum += mse_loss(tr->buf.eps_hat, tr->buf.eps, NULL, n);
    }
    return dp_sum(&tr->comm.dp, sum) / (global ? tr->comm.dp.size : 1) / batches;
}

/* Validation evaluates the EMA weights when the run keeps them (train.ema >
 * 0), the weights a run samples and exports with; the live weights
 * otherwise. The forward reads m->w (on the CPU also m->params, the same
 * memory); the EMA lives in the same backend memory, so it stands in for
 * them during the validation and nothing is copied. */
double trainer_validate(Trainer *tr) {
    Model *m = &tr->model;
    float *w = m->w, *params = m->params;
    int w_current = m->w_current;
    if (tr->ema) {
        if (m->params == m->w) m->params = tr->ema;
        m->w = tr->ema;
        m->w_current = 1;
    }
    double loss = fixed_set_loss(tr, tr->val, VAL_SET_KEY, STREAM_VAL, tr->deck->train.val_batches, 1);
    m->w = w, m->params = params, m->w_current = w_current;
    return loss;
}

/* The CE probe measures the training itself: the live weights, a set drawn with the run's seed. */
double trainer_probe(Trainer *tr) {
    return fixed_set_loss(tr, tr->probe ? tr->probe : tr->val, tr->deck->train.seed, STREAM_PROBE,
                          tr->deck->prog.probe_batches, 0);
}

