/* The training loop of `entprog train`: diffusion epsilon-MSE on clips drawn
 * from the dataset, one optimizer step per batch (src/train/batches.c,
 * src/train/step.c), Ent-Prog stages and search windows driven step by step
 * (src/train/stages.c), periodic validation on a fixed set, logging
 * (src/train/metrics.c), and checkpoints that resume bit-exactly. */
#pragma once
#include "train/trainer.h"

/* Sets up model, optimizer and data; resume (full checkpoint) or train.init (weights) or scratch. */
void trainer_setup(Trainer *tr, const Deck *deck, const char *resume);
void trainer_save(Trainer *tr);
/* Trains to train.steps, or until SIGUSR1 (Slurm's warning before the time
 * limit, forwarded by the job script): then every rank agrees at the end of
 * the current step, a checkpoint is written, and it returns 1 (else 0). */
int trainer_run(Trainer *tr);
/* One metrics.csv row (kind: train | search | val). */
void trainer_log_row(Trainer *tr, const char *kind, double loss, double gnorm, double lr, double ms);
void trainer_free(Trainer *tr);
