/* EP-VDiT weights from a DiT checkpoint (Peebles & Xie; the state-dict names
 * of facebookresearch/DiT `models.py`, as safetensors). The name-by-name
 * mapping and the reasons for each choice: docs/weights.md. */
#pragma once
#include <stdint.h>
#include "model/params.h"

#define DIT_NULL_LABEL (-1) /* the last row of the label table: DiT's null class */

typedef struct {
    int blocks;       /* DiT depth found (= the deck's L) */
    int learn_sigma;  /* DiT predicted a variance too (2C output channels); only the noise half is kept */
    int label;        /* the label row folded into the conditioning */
    int n_labels;     /* rows of DiT's label table */
} DitImportInfo;

/* Fills w (pt->total floats) for `shape`: every part DiT lacks from the
 * seeded initialisation of docs/model.md (param_init), then every DiT tensor
 * over it, the chosen label's embedding folded into the timestep MLP's last
 * bias. Dies naming the tensor and file on any shape that does not fit the
 * deck, a tensor it does not know, or a non-finite value; w is the caller's
 * buffer, so nothing is written anywhere before all of it succeeded. */
void dit_import(const char *path, const ParamTable *pt, const ModelShape *shape, int label, uint64_t seed, float *w,
                DitImportInfo *info);
