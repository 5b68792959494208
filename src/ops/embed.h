/* Fixed embeddings: DiT's sin-cos position/frame tables and the timestep features. */
#pragma once

/* [gh*gw, D]: first D/2 channels encode the column index, the rest the row index. */
void embed_pos2d(float *out, int D, int gh, int gw);
/* [F, D]: the 1-D sin-cos embedding of the frame index (sin half first). */
void embed_frames(float *out, int D, int F);
/* [256]: cos(t f_i) then sin(t f_i), f_i = exp(-ln(10000) i / 128). */
void embed_timestep(float *out, int t);
