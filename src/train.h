/* The training loop of `entprog train`: diffusion epsilon-MSE on clips drawn
 * from the dataset, one optimizer step per batch, periodic validation on a
 * fixed set, logging, and checkpoints that resume bit-exactly. */
#pragma once
#include <stdio.h>
#include "dataset.h"
#include "deck.h"
#include "dp.h"
#include "diffusion.h"
#include "entprog.h"
#include "model.h"
#include "optim.h"
#include "rng.h"

typedef struct {
    float *x0, *x, *eps, *ref, *pose, *eps_hat, *deps;
    int *t;
    uint8_t *drop_ref, *drop_pose;
} BatchBuffers;

typedef struct {
    const Deck *deck;
    Model model;
    Optimizer opt;
    float *ema;              /* NULL when train.ema = 0 */
    Diffusion diff;
    Dataset *train, *val;
    Rng rng;                 /* draws clips, t, noise and dropout; stored in checkpoints */
    long long step, samples_seen;
    BatchBuffers buf;
    FILE *metrics;
    int rank, world;
    Prog prog;               /* what trains when (entprog.method) */
    uint8_t *mask;           /* [pt.n] scratch for trainable masks */
    Dp dp;                   /* data-parallel ranks */
    struct DpNccl *nccl;     /* GPU ranks exchanging device buffers (ENTPROG_COMM=nccl), else NULL */
    size_t *cut;             /* [R+1] each rank's slice of the packed gradients */
    float *comm_scratch;     /* reduce-scatter receive buffer */
    double comm_s;           /* seconds the last step spent communicating */
    long long last_saved;    /* step of the last checkpoint written (-1: none) */
} Trainer;

/* Sets up model, optimizer and data; resume (full checkpoint) or train.init (weights) or scratch. */
void trainer_setup(Trainer *tr, const Deck *deck, const char *resume);
/* One optimizer step; returns the batch loss and writes the gradient norm. */
double trainer_step(Trainer *tr, double *gnorm, double *lr_used);
/* Mean loss on the fixed validation set (same clips, t and noise every time). */
double trainer_validate(Trainer *tr);
/* Mean loss on the fixed Ent-Prog probe set (val split, own seed, fixed t and noise). */
double trainer_probe(Trainer *tr);
void trainer_save(Trainer *tr);
/* Trains to train.steps, or until SIGUSR1 (Slurm's warning before the time
 * limit, forwarded by the job script): then every rank agrees at the end of
 * the current step, a checkpoint is written, and it returns 1 (else 0). */
int trainer_run(Trainer *tr);
/* One metrics.csv row (kind: train | search | val). */
void trainer_log_row(Trainer *tr, const char *kind, double loss, double gnorm, double lr, double ms);

/* Ent-Prog stages (train_stages.c). */
/* Before a step: starts a stage when one begins (may run a whole independent-trials search). */
void stages_before_step(Trainer *tr);
/* Inside a supernet window: picks this step's candidate and its trainable set. */
void stages_pick_candidate(Trainer *tr);
/* After a step that took `seconds`: supernet bookkeeping, decision at the window's end. */
void stages_after_step(Trainer *tr, double seconds);
/* Sets the model's trainable set and the optimizer's moments to m's mask. */
void stages_apply(Trainer *tr, int m, int exact);
/* The CEI ranking for a method that needs one: from the start checkpoint or computed. */
void stages_rank_blocks(Trainer *tr, const char *init_path);
void trainer_free(Trainer *tr);
