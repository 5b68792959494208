/* The Ent-Prog methods a deck can name (entprog.method), in one table: what
 * order the blocks unfreeze in, how m (the blocks that train) is scheduled,
 * and what trains. The deck checks names against it; src/train/entprog.c
 * carries each column out. docs/entprog.md describes the methods. */
#pragma once

typedef enum {
    ORDER_INDEX,  /* block 0 first (unused by what_trains != TRAINS_TOP_M) */
    ORDER_CEI,    /* CEI ranking, highest pi first */
    ORDER_RANDOM, /* a random permutation (entprog.seed): "w/o CEI" */
    ORDER_DEPTH,  /* deepest block first: "w/o CEI" */
} MethodOrder;

typedef enum {
    SCHED_ALL,      /* one stage, m = L */
    SCHED_STATIC,   /* one stage, m = entprog.static_m (default ceil(L/2)) */
    SCHED_LINEAR,   /* K stages, m grows by equal steps: "w/o Ada." */
    SCHED_ADAPTIVE, /* K stages, m* searched at each stage start by CE(m) */
} MethodSchedule;

typedef enum {
    TRAINS_ALL,      /* every tensor */
    TRAINS_TOP_M,    /* the first m blocks of the order, the output layer, the input side with entprog.train_inputs */
    TRAINS_TEMPORAL, /* the temporal attention of every block only (the paper's video baseline) */
} MethodTrains;

typedef struct {
    const char *name;
    MethodOrder order;
    MethodSchedule schedule;
    MethodTrains trains;
    const char *what; /* one line for the log and the docs */
} ProgMethod;

/* The method called name, or NULL. */
const ProgMethod *prog_method_find(const char *name);
/* "full|entprog|..." for messages and the deck's check. */
const char *prog_method_choices(void);
