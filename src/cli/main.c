/* entprog: Ent-Prog training of EP-VDiT. One binary, several sub-commands (commands.c). */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include "cli/commands.h"
#include "core/blas_core.h"

int main(int argc, char **argv) {
    blas_core_fix(argv); /* may restart the program: before MPI_Init */
    MPI_Init(&argc, &argv);
    int rc = 2; /* no command, or an unknown one */
    const Command *c = argc >= 2 ? command_find(argv[1]) : NULL;
    if (argc < 2) {
        commands_help(stderr);
    } else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        commands_help(stdout);
        rc = 0;
    } else if (!c) {
        fprintf(stderr, "entprog: error: unknown command '%s' (one of:", argv[1]);
        for (int i = 0; i < N_COMMANDS; i++) fprintf(stderr, " %s", COMMANDS[i].name);
        fprintf(stderr, ")\n");
        commands_help(stderr);
    } else {
        rc = c->run(argc - 1, argv + 1);
    }
    MPI_Finalize();
    return rc;
}
