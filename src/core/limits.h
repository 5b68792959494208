/* Fixed limits of entprog, each defined once; the deck loader and the
 * commands refuse what exceeds them, naming the key. */
#pragma once

/* Transformer blocks (model.L): the Ent-Prog order, CEI scores and ranking
 * are fixed arrays of this size. The paper's model has 28. */
#define EP_MAX_BLOCKS 512
