/* The Ent-Prog schedule datasets of a checkpoint (docs/formats.md "Checkpoint"):
 * /schedule/cei float64 [L] and /schedule/order int32 [L]. They sit outside
 * the tensors the checkpoint checksum covers, so adding them keeps the file
 * loadable. */
#pragma once

/* Adds or replaces /schedule/cei and /schedule/order in an existing
 * checkpoint or bare weights file. The file is copied to "<path>.tmp", the
 * copy is edited and synced, then renamed over path: a crash leaves either
 * the old file or the new one under path, never a half-written one. Refuses
 * (dies, naming the file) an order that is not a permutation of 0..L-1 or
 * a non-finite score, before touching anything. Serial: call on one process. */
void ckpt_write_cei(const char *path, const double *cei, const int *order, int L);

/* Reads them back: 1 if present, 0 if the file has neither. Dies naming the
 * file if only one is present, a shape is not [L], or order is not a
 * permutation of 0..L-1. A safetensors file has neither (0). */
int ckpt_read_cei(const char *path, double *cei, int *order, int L);
