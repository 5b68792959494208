/* The pose guider (docs/model.md item 4): convs on the pose maps down to the latent
 * grid, a patch conv to tokens and a zero-initialised Linear. */
#pragma once
#include "model/model.h"

/* Writes m->a.pg_out [N,D] (before condition dropout). */
void pose_guider_forward(Model *m, const Batch *in);
/* Given d loss / d video tokens (m->g.dzr), accumulates the guider's parameter gradients. */
void pose_guider_backward(Model *m, const Batch *in);
