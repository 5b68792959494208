/* Forward and backward of block b in the reference and video passes. */
#pragma once
#include "model.h"

/* full = 0: only the bank and its qkv (the block after which the pass stops). */
void ref_block_forward(Model *m, int b, int full);
void ref_block_backward(Model *m, int b, int full);
void video_block_forward(Model *m, int b, const Batch *in);
void video_block_backward(Model *m, int b, const Batch *in);
