/* Ent-Prog stages inside the training loop (src/train/stages.c): the loop
 * calls stages_before_step and stages_after_step around every step. */
#pragma once
#include "train/trainer.h"

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
