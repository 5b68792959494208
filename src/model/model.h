/* EP-VDiT (docs/model.md): parameters, activations and the forward/backward pass. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "model/params.h"
#include "model/shape.h"

/* One batch of model inputs (docs/model.md "Inputs of one forward"). */
typedef struct {
    const float *x;         /* [B,F,C,H,W] noisy latents */
    const int *t;           /* [B] timesteps */
    const float *ref;       /* [B,C,H,W] clean reference latent */
    const float *pose;      /* [B,F,Cp,sH,sW] pose maps in [0,1] */
    const uint8_t *drop_ref, *drop_pose; /* [B] condition dropout flags */
} Batch;

/* Activations of one block, both passes (kept for backward). Only what is
 * expensive to recompute is kept; backward recomputes the rest into shared
 * buffers (Acts.xhat, u, gelu), each with the op forward used, so results
 * are bit-identical: the modulated LayerNorm outputs from xhat, the GELU
 * output from h, and in the video pass the LayerNorm outputs themselves from
 * the block's input z0 plus the gated branches y1, y2 before them. A video
 * block keeps 16 values per token and model width instead of 25. */
typedef struct {
    float *mod;                       /* [2B,9D]: rows 0..B-1 video, B..2B-1 reference */
    /* reference pass (r_z0: its input, kept only with recompute) */
    float *r_z0, *r_xhat1, *r_rstd1, *r_qkv, *r_P, *r_ao, *r_y1;
    float *r_xhat2, *r_rstd2, *r_h, *r_y2;
    /* video pass: spatial, temporal, MLP */
    float *z0, *qkv, *P, *ao, *y1;
    float *qkvt, *Pt, *aot, *y2;
    float *h, *y3;
} BlockActs;

typedef struct {
    float *temb, *th1, *ta1, *c, *sc;  /* [2B,256], [2B,D] x4: conditioning, rows B.. are c(0) */
    float *xp;                         /* [N+Nr, C*p*p] patches of x then ref */
    float *zr;                         /* [N+Nr, D] residual streams: video tokens then reference tokens */
    float **pg_pre, **pg_act;          /* pose guider levels 0..G: [BF,Cg,h,w] before/after SiLU */
    float *pg_tok, *pg_patch, *pg_out; /* [N,Cg*p*p], [N,D], [N,D] */
    float *fmod, *xhatf, *rstdf, *uf, *fout; /* final layer */
    float *mean;                       /* LayerNorm mean scratch [N] */
    float *xhat, *rstd, *zs;           /* [N,D], [N], [N,D]: a video LayerNorm's output and input while used */
    float *u, *gelu;                   /* [N,D], [N,Dm]: a linear's input while it is used (both passes) */
    BlockActs *blk;
} Acts;

typedef struct {
    float *dzr;               /* [N+Nr, D] gradients of both streams */
    float *dxhat, *du, *dy, *dao, *dqkv, *dqkv_r, *dbank, *dh, *dgl, *dmod, *dsc, *dc;
    float *dt1, *dpg_tok, *dpg_patch, *dpg_out, *dpg_a, *dpg_b, *dfout;
    float *dS, *col;          /* attention-backward and im2col scratch (sizes from the backend) */
} Grads;

#define NO_GRAD ((size_t)-1)

typedef struct {
    ModelShape shape;         /* shape.F is the F of the allocated activations */
    ParamTable pt;
    float *params;            /* pt.total floats */
    /* Gradients exist only for trainable tensors, packed in table order into
     * one allocation: tensor i's gradient is grads + grad_off[i], or none when
     * grad_off[i] == NO_GRAD (a frozen tensor: no buffer, no weight-gradient GEMM). */
    float *grads;
    uint8_t *trainable;       /* [pt.n] */
    size_t *grad_off;         /* [pt.n] */
    size_t grad_size, grad_cap; /* floats in use / allocated */
    int first_bwd;            /* earliest block the backward reaches (L: none) */
    int input_grads;          /* t_embed, x_embed or pose_guider trains: backward runs to the input */
    int act_first;            /* blocks before it share one scratch set of activations */
    int scratch_inputs;       /* the backward scratch has the input side's buffers (carved for input_grads) */
    int B;
    Acts a;
    Grads g;
    float *act_mem, *grad_mem;
    size_t act_floats, scratch_floats;
    float *pos, *frame_emb;   /* fixed embeddings [S,D], [F,D] (backend memory) */
    /* The backend's side (ops.h memory). On the CPU w == params and cgrads ==
     * grads; elsewhere inputs pass through `stage`, and params reach w and
     * gradients leave cgrads as the flags below say (resident: see
     * model_params_to_host). */
    float *w, *cgrads;
    int cgrads_zero;          /* cgrads is known to be all zero (model_zero_grads) */
    int recompute;            /* set before model_set_batch: blocks keep only their inputs (z0, r_z0) and
                                 the bank's qkv, and backward reruns each one's forward into one shared
                                 set (train.recompute) */
    int recompute_blocks;     /* with recompute: only this many blocks do, those just before the last
                                 one, into its set (model_recomputes; 0: all; train.recompute_blocks) */
    int forward_only;         /* set before model_set_batch: no gradients, no backward scratch; on a
                                 GPU the parameters are uploaded once, at the first forward */
    int w_current;            /* w holds the latest parameters (else the next forward uploads them) */
    int resident;             /* the trainer's mode: w is the authoritative copy, updated on the device;
                                 params is a mirror (model_params_to_host), gradients stay in cgrads */
    int host_current;         /* params holds the latest parameters */
    struct {
        float *x, *ref, *pose, *eps, *deps;
        int *t;
        uint8_t *drop_ref, *drop_pose;
    } stage;
    const int *skip;          /* [L] or NULL: skip(b) makes block b the identity in both passes */
    /* Called by backward each time the gradients of every tensor from table
     * index `first` on are final (after the final layer, after each block, at
     * the end with 0), so they can leave while backward goes on (the gradient
     * exchange, src/train/step.c). On a GPU they are queued, not yet computed. NULL: none. */
    void (*grads_final)(void *ctx, int first);
    void *grads_final_ctx;
} Model;

/* The same gradient on the backend's side (model code uses this one). */
static inline float *model_cgrad(const Model *m, int idx) {
    return m->grad_off[idx] == NO_GRAD ? NULL : m->cgrads + m->grad_off[idx];
}

/* Whether block b keeps only its inputs and reruns its forward in backward:
 * with recompute, every block (recompute_blocks = 0: they rerun into one
 * extra set), or the K = recompute_blocks blocks just before the last one,
 * L-1-K .. L-2, which rerun into the last block's own set: backward is done
 * with it when it reaches them, so K blocks save K sets and cost none. Deep
 * ones, because blocks before the earliest trainable one share one set
 * anyway (act_first), so recomputing them would save nothing. */
static inline int model_recomputes(const Model *m, int b) {
    int L = m->shape.L, K = m->recompute_blocks;
    return m->recompute && !m->forward_only && (K <= 0 || (b >= L - 1 - K && b < L - 1));
}

/* Last block that is not skipped (-1 if all are): the reference pass only
 * runs attention and MLP in blocks before it, whose banks are used. */
int model_last_active(const Model *m);

static inline float *model_grad(const Model *m, int idx) {
    return m->grad_off[idx] == NO_GRAD ? NULL : m->grads + m->grad_off[idx];
}

/* Builds the parameter table and allocates the parameters (zeroed), every tensor trainable;
 * gradients and activations come with model_set_batch. */
void model_create(Model *m, const ModelShape *shape);
/* Chooses which tensors train (mask [pt.n]). Backward then reaches only the
 * earliest block with a trainable tensor (the input when an input-side module
 * trains) and blocks before it keep no activations. exact = 1 fits the
 * gradient and activation memory to this mask; exact = 0 only grows it (the
 * supernet switches candidates every step). */
void model_set_trainable(Model *m, const uint8_t *mask, int exact);
/* The index range [0, input_end) of the input-side tensors (t_embed, x_embed, pose_guider). */
static inline int model_input_end(const Model *m) { return m->pt.blk0; }
/* (Re)allocates activations for batch B and clip length F, and the gradients
 * unless m->forward_only (inference: sample, cei, predict) is set first. */
void model_set_batch(Model *m, int B, int F);
/* Floats model_set_batch(m, B, F) would allocate for activations and backward
 * scratch with the current trainable set, computed without allocating. */
void model_plan(const Model *m, int B, int F, size_t *act_floats, size_t *scratch_floats);
/* The same for the trainable set `mask` instead of the current one; grad_floats: its packed gradients. */
void model_plan_mask(const Model *m, const uint8_t *mask, int B, int F, size_t *act_floats, size_t *scratch_floats,
                     size_t *grad_floats);
void model_destroy(Model *m);
/* The parameter mirror in resident mode (all no-ops where backend memory is host memory):
 * to_host before host code reads params; written after it writes them (the next
 * forward uploads); changed_on_device after the device copy was updated. */
void model_params_to_host(Model *m);
void model_params_written(Model *m);
void model_params_changed_on_device(Model *m);
/* Resident mode: host grads := the device gradients (they stay on the device otherwise). */
void model_grads_to_host(Model *m);

/* grads := 0 for the next backward, which then starts from zero on the
 * device instead of uploading the host gradients. On a GPU the host copy is
 * only refreshed by that backward: call it right before one. */
void model_zero_grads(Model *m);

/* eps_hat [B,F,C,H,W]. */
void model_forward(Model *m, const Batch *in, float *eps_hat);
/* Accumulates d loss / d params into m->grads, given d loss / d eps_hat. Needs the forward's activations. */
void model_backward(Model *m, const Batch *in, const float *deps);
/* mean((eps_hat - eps)^2) in double; writes deps = d loss / d eps_hat when non-NULL. */
double mse_loss(const float *eps_hat, const float *eps, float *deps, size_t n);
