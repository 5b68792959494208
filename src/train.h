/* The training loop of `entprog train`: diffusion epsilon-MSE on clips drawn
 * from the dataset, one optimizer step per batch, periodic validation on a
 * fixed set, logging, and checkpoints that resume bit-exactly. */
#pragma once
#include <stdio.h>
#include "dataset.h"
#include "deck.h"
#include "diffusion.h"
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
} Trainer;

/* Sets up model, optimizer and data; resume (full checkpoint) or train.init (weights) or scratch. */
void trainer_setup(Trainer *tr, const Deck *deck, const char *resume);
/* One optimizer step; returns the batch loss and writes the gradient norm. */
double trainer_step(Trainer *tr, double *gnorm, double *lr_used);
/* Mean loss on the fixed validation set (same clips, t and noise every time). */
double trainer_validate(Trainer *tr);
void trainer_save(Trainer *tr);
void trainer_run(Trainer *tr);
void trainer_free(Trainer *tr);
