/* The state of one training run (Trainer), shared by the loop
 * (src/train/train.c), the Ent-Prog stages (src/train/stages.c) and the
 * batches it draws (src/train/batches.c). */
#pragma once
#include <stdio.h>
#include "core/rng.h"
#include "data/dataset.h"
#include "deck/deck.h"
#include "model/diffusion.h"
#include "model/model.h"
#include "mpi/dp.h"
#include "train/entprog.h"
#include "train/optim.h"
#include "train/step.h"

/* Stream tags for rng_seed_stream: one purpose, one stream. */
enum { STREAM_INIT = 1, STREAM_TRAIN = 2, STREAM_VAL = 3, STREAM_PROBE = 4 };

typedef struct {
    float *x0, *x, *eps, *ref, *pose, *eps_hat, *deps;
    int *t;
    uint8_t *drop_ref, *drop_pose;
} BatchBuffers;

struct Trials;

typedef struct {
    const Deck *deck;
    Model model;
    Optimizer opt;
    float *ema;              /* NULL when train.ema = 0 */
    Diffusion diff;
    Dataset *train, *val;
    Dataset *probe;          /* Ent-Prog's CE probe set: training videos held out (NULL: the validation split) */
    Rng rng;                 /* draws clips, t, noise and dropout; stored in checkpoints */
    long long step, samples_seen;
    BatchBuffers buf;
    FILE *metrics;
    int rank, world;
    Prog prog;               /* what trains when (entprog.method) */
    uint8_t *mask;           /* [pt.n] scratch for trainable masks */
    Dp all;                  /* every rank of the run */
    StepComm comm;           /* the ranks a step averages over (a rank group inside a trials search) */
    double comm_s;           /* seconds the last step spent communicating */
    int step_skipped;        /* the last step's loss or gradient was not finite: no update */
    int bad_steps;           /* consecutive skipped steps (train.max_bad_steps ends the run) */
    char metrics_path[DECK_PATH_MAX + 16];
    long long last_saved;    /* step of the last checkpoint written (-1: none) */
    struct Trials *trials;   /* an independent-trials search under way (stages.c), else NULL */
} Trainer;

/* ---- batches (batches.c) ---- */
void batches_alloc(BatchBuffers *b, const ModelShape *s, int B);
void batches_free(BatchBuffers *b);
/* One optimizer step on a batch drawn from the training split (train_step);
 * advances the step counter; returns the batch loss and writes the gradient norm. */
double trainer_step(Trainer *tr, double *gnorm, double *lr_used);
/* Mean loss on the fixed validation set (same clips, t and noise every time). */
double trainer_validate(Trainer *tr);
/* Mean loss on the fixed Ent-Prog probe set (held-out training videos, else
 * the validation split; own seed, fixed clips, t and noise). */
double trainer_probe(Trainer *tr);
