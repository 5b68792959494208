/* The argument helper of args.h. */
#include "cli/args.h"
#include "cli/commands.h"
#include "core/die.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE_MAX 512
#define ARGS_MAX_OPTS 32

/* "usage: entprog <cmd> <synopsis>" from the command table, for error messages. */
static const char *usage_of(const char *cmd) {
    static char buf[USAGE_MAX];
    const Command *c = command_find(cmd);
    if (!c) snprintf(buf, sizeof buf, "usage: entprog %s", cmd);
    else snprintf(buf, sizeof buf, "usage: entprog %s %s", c->name, c->synopsis);
    return buf;
}

static const ArgOpt *find_opt(const ArgSpec *s, const char *name) {
    for (int i = 0; i < s->n_opts; i++)
        if (!strcmp(s->opts[i].name, name)) return &s->opts[i];
    return NULL;
}

static long long parse_whole(const ArgSpec *s, const ArgOpt *o, const char *v) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < o->lo || x > o->hi) {
        if (o->hi >= INT_MAX) /* no useful upper bound: don't print 2^31 - 1 */
            ep_die("%s: %s '%s' is not a whole number >= %lld (%s)", s->cmd, o->name, v, o->lo, usage_of(s->cmd));
        ep_die("%s: %s '%s' is not a whole number in [%lld, %lld] (%s)", s->cmd, o->name, v, o->lo, o->hi,
               usage_of(s->cmd));
    }
    return x;
}

static double parse_real(const ArgSpec *s, const ArgOpt *o, const char *v) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
        ep_die("%s: %s '%s' is not a finite number (%s)", s->cmd, o->name, v, usage_of(s->cmd));
    return x;
}

/* Stores option o's value v (NULL for a flag). */
static void store(const ArgSpec *s, const ArgOpt *o, const char *v) {
    switch (o->kind) {
    case ARG_STR: *(const char **)o->dst = v; break;
    case ARG_FLAG: *(int *)o->dst = 1; break;
    case ARG_INT: *(int *)o->dst = (int)parse_whole(s, o, v); break;
    case ARG_INT64: *(long long *)o->dst = parse_whole(s, o, v); break;
    case ARG_REAL: *(double *)o->dst = parse_real(s, o, v); break;
    case ARG_LIST: {
        ArgList *l = o->dst;
        l->v[l->n++] = v;
        break;
    }
    }
    if (o->given) *o->given = 1;
}

static void print_help(const ArgSpec *s) {
    printf("%s\n", usage_of(s->cmd));
    const Command *c = command_find(s->cmd);
    if (c) printf("%s\n", c->summary);
    if (s->note) printf("%s\n", s->note);
    for (int i = 0; i < s->n_opts; i++) {
        const ArgOpt *o = &s->opts[i];
        printf("  %-12s %s%s\n", o->name, o->what ? o->what : "", o->required ? " (required)" : "");
    }
}

int args_parse(const ArgSpec *s, int argc, char **argv) {
    /* a list can hold at most every argument: room for that, so no limit */
    for (int i = 0; i < s->n_opts; i++)
        if (s->opts[i].kind == ARG_LIST) {
            ArgList *l = s->opts[i].dst;
            l->n = 0;
            l->v = ep_malloc((size_t)(argc > 0 ? argc : 1) * sizeof *l->v, "argument list");
        }
    if (s->n_opts > ARGS_MAX_OPTS) ep_die("%s: more than %d options in its table", s->cmd, ARGS_MAX_OPTS);
    int seen[ARGS_MAX_OPTS] = {0}; /* which options appeared (the required check) */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help(s);
            return 0;
        }
        if (a[0] != '-') {
            if (!s->deck) ep_die("%s: unexpected argument '%s' (it takes no deck; %s)", s->cmd, a, usage_of(s->cmd));
            if (*s->deck) ep_die("%s: unexpected argument '%s' (one deck only; %s)", s->cmd, a, usage_of(s->cmd));
            *s->deck = a;
            continue;
        }
        const ArgOpt *o = find_opt(s, a);
        if (!o) ep_die("%s: unknown option '%s' (%s)", s->cmd, a, usage_of(s->cmd));
        seen[o - s->opts] = 1;
        if (o->kind == ARG_FLAG) {
            store(s, o, NULL);
            continue;
        }
        if (i + 1 >= argc) ep_die("%s: %s needs a value (%s)", s->cmd, a, usage_of(s->cmd));
        store(s, o, argv[++i]);
    }
    if (s->deck && !*s->deck) ep_die("%s: no input deck given (%s)", s->cmd, usage_of(s->cmd));
    for (int i = 0; i < s->n_opts; i++) {
        const ArgOpt *o = &s->opts[i];
        if (!o->required || seen[i]) continue;
        if (o->what) ep_die("%s: %s is required: %s (%s)", s->cmd, o->name, o->what, usage_of(s->cmd));
        ep_die("%s: %s is required (%s)", s->cmd, o->name, usage_of(s->cmd));
    }
    return 1;
}

void args_list_free(ArgList *l) {
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
