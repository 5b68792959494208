/* The input deck: an INI file with sections [model], [data], [train].
 * Every key has a default; unknown sections/keys and impossible values are
 * errors that name the key and the file. */
#pragma once
#include <stdint.h>
#include "model/shape.h"

#define DECK_PATH_MAX 512

typedef struct {
    char dir[DECK_PATH_MAX];  /* folder holding train.h5 / val.h5 / test.h5 */
    int n_train, n_val, n_test; /* videos per split (generator) */
    int frames;               /* T: frames per video (generator); must be >= model.F */
    int frame_stride;         /* loader: stride between the F clip frames */
    uint64_t seed;            /* generator seed */
    double fps;
    char vae[DECK_PATH_MAX];  /* SD VAE safetensors: sample decodes latents to frames ("" = pixel space) */
} DataConfig;

typedef struct {
    char out_dir[DECK_PATH_MAX];
    char init[DECK_PATH_MAX];  /* checkpoint or weights file to start from ("" = scratch) */
    uint64_t seed;
    int steps, batch;
    char optimizer[16];       /* adamw | sgd */
    double lr, beta1, beta2, eps, weight_decay, momentum;
    double grad_clip;         /* 0 = off */
    int warmup;               /* linear warm-up steps */
    char lr_schedule[16];     /* constant | cosine */
    double min_lr;            /* cosine floor */
    double ema;               /* decay, 0 = off */
    double p_drop_ref, p_drop_pose;
    int log_every, val_every, ckpt_every, keep_ckpts;
    int val_batches;          /* validation batches (fixed samples, t and noise) */
    char backend[16];         /* cpu | cuda */
    int max_bad_steps;        /* consecutive steps with a non-finite loss or gradient before the run stops */
    int recompute;            /* 1: blocks keep only their input; backward recomputes their activations */
    int recompute_blocks;     /* with recompute: only this many blocks do, those before the last (0: all) */
} TrainConfig;

/* [entprog]: how fine-tuning chooses what trains (docs/entprog.md). */
typedef struct {
    char method[16];          /* full | entprog | static | linear | random | depth | temporal */
    int stages;               /* K */
    char grid[128];           /* candidate block counts "2,3,4,6" ("" = ceil(L*j/K), j = 1..K) */
    int max_candidates;       /* |M_k| at most */
    char search[16];          /* supernet (the paper's) | trials (independent, from one snapshot) */
    int search_steps;         /* the search window: steps per stage (supernet) or per candidate (trials); 0 = one epoch */
    int probe_batches;        /* fixed probe set for CE: batches of B clips with fixed t and noise */
    char sampling[16];        /* supernet: uniform (i.i.d. m per step, the paper's) | balanced (least sampled first) */
    int probe_videos;         /* training videos held out as the probe set (0: probe on the validation split) */
    int static_m;             /* static method: blocks that train (0 = L/2) */
    int cei_n;                /* CEI probe tuples when the start checkpoint has no ranking */
    char timing[16];          /* wall (measured) | cost (deterministic model of a step's cost) */
    int train_inputs;         /* 1: t_embed, x_embed, pose_guider train too (backward reaches the input) */
    int reverse;              /* 1: use the order backwards (e.g. the bottom-m CEI blocks) */
    uint64_t seed;            /* random order (method random) */
} ProgConfig;

typedef struct {
    char path[DECK_PATH_MAX];
    ModelShape model;
    DataConfig data;
    TrainConfig train;
    ProgConfig prog;
    char *text;               /* the whole deck as read (stored in checkpoints) */
} Deck;

/* Load and validate; dies with a message naming the file and key on error. */
void deck_load(Deck *d, const char *path);
/* Parse from a string (e.g. the /config of a checkpoint); label names it in errors. */
void deck_parse_string(Deck *d, const char *text, const char *label);
/* Apply one "section.key=value" override (command line --set). */
void deck_override(Deck *d, const char *assignment);
void deck_free(Deck *d);
