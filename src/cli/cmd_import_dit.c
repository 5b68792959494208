/* entprog import-dit <deck> --dit DIT.safetensors --out W.safetensors [--label K|null] [--seed N]
 * EP-VDiT weights of the deck's shape from a DiT checkpoint (io/dit_import.h),
 * written as safetensors for train.init or --weights. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/infer_model.h"
#include "core/die.h"
#include "deck/deck.h"
#include "io/dit_import.h"
#include "io/weights.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_import_dit(int argc, char **argv) {
    const char *deck_path = NULL, *dit = NULL, *out = NULL, *label_s = "null";
    long long seed = -1;
    const ArgOpt opts[] = {
        {"--dit", ARG_STR, &dit, .required = 1, .what = "DiT checkpoint as safetensors (tools/dit_pt_to_safetensors.py)"},
        {"--out", ARG_STR, &out, .required = 1, .what = "safetensors file to write"},
        {"--label", ARG_STR, &label_s, .what = "class label folded into the conditioning, or null (default)"},
        {"--seed", ARG_INT64, &seed, 0, (1LL << 62), .what = "seed of what DiT lacks (default: the deck's train.seed)"},
    };
    ArgSpec spec = {"import-dit", &deck_path, opts, sizeof opts / sizeof *opts, NULL};
    if (!args_parse(&spec, argc, argv)) return 0;
    int label = DIT_NULL_LABEL;
    if (strcmp(label_s, "null")) {
        char *end;
        long v = strtol(label_s, &end, 10);
        if (!*label_s || *end || v < 0 || v > 1 << 24) ep_die("import-dit: --label '%s' is not a label number or null", label_s);
        label = (int)v;
    }
    infer_check_readable("import-dit", "--dit", dit);
    Deck deck;
    deck_load(&deck, deck_path);
    ModelShape shape = deck.model;
    ParamTable pt;
    param_table_build(&pt, &shape);
    float *w = ep_calloc(pt.total, sizeof(float), "weights");
    DitImportInfo info;
    dit_import(dit, &pt, &shape, label, seed >= 0 ? (uint64_t)seed : deck.train.seed, w, &info);
    weights_save_safetensors(out, &pt, &shape, w, ST_OUT_F32);
    printf("import-dit: %d DiT blocks%s, label row %d of %d%s -> %s (%zu parameters)\n", info.blocks,
           info.learn_sigma ? " (learned sigma: noise half kept)" : "", info.label, info.n_labels,
           info.label == info.n_labels - 1 ? " (null class)" : "", out, pt.total);
    if (shape.F > 1 && !shape_frame_embed_temporal(&shape))
        printf("import-dit: model.frame_embed = input: each video frame is DiT plus the fixed frame embedding; "
               "model.frame_embed = temporal makes it DiT itself, frame by frame (docs/weights.md)\n");
    free(w);
    param_table_free(&pt);
    deck_free(&deck);
    return 0;
}
