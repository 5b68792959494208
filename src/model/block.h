/* Forward and backward of block b in the reference and video passes. */
#pragma once
#include "model/model.h"

/* full = 0: only the bank and its qkv (the block after which the pass stops). */
void ref_block_forward(Model *m, int b, int full);
void ref_block_backward(Model *m, int b, int full);
/* m->recompute: reference block b's forward once more from its kept input, before its backward. */
void ref_block_recompute(Model *m, int b, int full);
void video_block_forward(Model *m, int b, const Batch *in);
/* m->recompute: video block b's forward once more, from its kept input z0
 * into the shared activations, right before its backward. */
void video_block_recompute(Model *m, int b, const Batch *in);
void video_block_backward(Model *m, int b, const Batch *in);

/* The attention layouts of the reference pass, the spatial and the temporal sub-layer. */
#include "ops/ops.h"
AttnShape attn_shape_ref(const Model *m);
AttnShape attn_shape_spatial(const Model *m);
AttnShape attn_shape_temporal(const Model *m);
