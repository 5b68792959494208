#include "deck/methods.h"
#include <stdio.h>
#include <string.h>

static const ProgMethod METHODS[] = {
    {"full", ORDER_INDEX, SCHED_ALL, TRAINS_ALL, "every tensor trains"},
    {"entprog", ORDER_CEI, SCHED_ADAPTIVE, TRAINS_TOP_M, "CEI order, m searched at each stage (Ent-Prog)"},
    {"static", ORDER_CEI, SCHED_STATIC, TRAINS_TOP_M, "the top static_m blocks by CEI, one stage"},
    {"linear", ORDER_CEI, SCHED_LINEAR, TRAINS_TOP_M, "CEI order, m grows by equal steps (w/o Ada.)"},
    {"random", ORDER_RANDOM, SCHED_ADAPTIVE, TRAINS_TOP_M, "random order, m searched (w/o CEI)"},
    {"depth", ORDER_DEPTH, SCHED_ADAPTIVE, TRAINS_TOP_M, "deepest block first, m searched (w/o CEI)"},
    {"temporal", ORDER_INDEX, SCHED_ALL, TRAINS_TEMPORAL, "only the temporal attention of every block, with its shift_t/scale_t/gate_t rows of ada"},
};
#define N_METHODS ((int)(sizeof METHODS / sizeof METHODS[0]))

const ProgMethod *prog_method_find(const char *name) {
    for (int i = 0; i < N_METHODS; i++)
        if (!strcmp(name, METHODS[i].name)) return &METHODS[i];
    return NULL;
}

const char *prog_method_choices(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < N_METHODS; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "|" : "", METHODS[i].name);
    return buf;
}
