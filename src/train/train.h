/* The training loop of `entprog train`: diffusion epsilon-MSE on clips drawn
 * from the dataset, one optimizer step per batch (src/train/step.c), Ent-Prog
 * stages and search windows driven step by step (src/train/stages.c),
 * periodic validation on a fixed set, logging (src/train/metrics.c), and
 * checkpoints that resume bit-exactly. */
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
    long long last_saved;    /* step of the last checkpoint written (-1: none) */
    struct Trials *trials;   /* an independent-trials search under way (stages.c), else NULL */
} Trainer;

/* Sets up model, optimizer and data; resume (full checkpoint) or train.init (weights) or scratch. */
void trainer_setup(Trainer *tr, const Deck *deck, const char *resume);
/* One optimizer step on a batch drawn from the training split (train_step);
 * advances the step counter; returns the batch loss and writes the gradient norm. */
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
void trainer_free(Trainer *tr);

/* Ent-Prog stages (stages.c), called by the loop around each step. */
/* Before a step: begins a stage when one starts here (a fixed m, a supernet
 * window or a trials search); inside a window, picks the step's candidate.
 * Returns 0 when this rank has no step to take (its rank group waits in a
 * trials search). */
int stages_before_step(Trainer *tr);
/* After the step (seconds: its wall time; 0 when the rank waited): search
 * bookkeeping; decides m* at a window's end. */
void stages_after_step(Trainer *tr, double seconds);
/* Inside a trials search the run's state is not one model's: the search is
 * abandoned, the state it started from restored (a checkpoint then holds
 * that; resuming reruns the search). No-op otherwise. */
void stages_abandon_search(Trainer *tr);
/* Sets the model's trainable set and the optimizer's moments to m's mask. */
void stages_apply(Trainer *tr, int m, int exact);
/* The CEI ranking for a method that needs one: from the start checkpoint or computed. */
void stages_rank_blocks(Trainer *tr, const char *init_path);
