/* The entprog sub-commands, in one table (commands.c): main dispatches from
 * it, and `entprog --help`, the unknown-command error and each command's
 * usage line are printed from it. A handler gets argv from its own name on
 * and returns the exit code. */
#pragma once
#include <stdio.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *synopsis; /* the arguments after the name, as in the usage line */
    const char *summary;  /* one line: what it does */
} Command;

extern const Command COMMANDS[];
extern const int N_COMMANDS;

/* The command called `name`, or NULL. */
const Command *command_find(const char *name);
/* "usage: entprog <name> <synopsis>" without a newline. */
void command_usage(FILE *out, const Command *c);
/* The list of commands (entprog --help). */
void commands_help(FILE *out);

int cmd_train(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_datagen(int argc, char **argv);
int cmd_cei(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import_dit(int argc, char **argv);
int cmd_import_video(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_decode(int argc, char **argv);
