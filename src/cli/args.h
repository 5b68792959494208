/* One way for every command to read its arguments: an optional positional
 * deck, then options from a table. Each mistake (unknown option, missing
 * value, bad number, missing required option, extra argument) dies with one
 * line naming the command, the option and the command's usage. */
#pragma once

typedef enum {
    ARG_STR,   /* --opt VALUE             dst: const char ** */
    ARG_FLAG,  /* --opt                   dst: int *, set to 1 */
    ARG_INT,   /* --opt N, N in [lo, hi]  dst: int * (lo, hi within int) */
    ARG_INT64, /* --opt N, N in [lo, hi]  dst: long long * */
    ARG_REAL,  /* --opt X, X finite       dst: double * (domain checks stay with the command) */
    ARG_LIST,  /* --opt VALUE, repeatable dst: ArgList *, values in command-line order */
} ArgKind;

typedef struct {
    int n;
    const char **v; /* points into argv; free with args_list_free */
} ArgList;

typedef struct {
    const char *name; /* "--ckpt" */
    ArgKind kind;
    void *dst;
    long long lo, hi; /* ARG_INT, ARG_INT64 */
    int required;
    const char *what; /* its meaning: --help, and the "is required" error */
    int *given;       /* NULL, or set to 1 when the option appears */
} ArgOpt;

typedef struct {
    const char *cmd;   /* "sample": names the command in errors; its synopsis comes from the command table */
    const char **deck; /* the positional deck (required), or NULL for a command that takes none */
    const ArgOpt *opts;
    int n_opts;
    const char *note;  /* NULL, or more lines for --help */
} ArgSpec;

/* Reads argv[1..argc-1] (argv[0] is the command's name) into the table's
 * destinations, which hold their defaults. A repeated option keeps its last
 * value (ARG_LIST keeps them all). Returns 0 when -h or --help printed the
 * command's help to stdout (the command then exits 0), 1 otherwise. */
int args_parse(const ArgSpec *s, int argc, char **argv);
void args_list_free(ArgList *l);
