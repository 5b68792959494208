/* entprog: Ent-Prog training of EP-VDiT. One binary, several sub-commands. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include "commands.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: entprog <command> [options]\n"
            "commands:\n"
            "  datagen <deck>                      write the synthetic human-video dataset and its preview\n"
            "  train <deck> [--resume CKPT] [--set section.key=value ...]\n"
            "                                      train EP-VDiT as the deck says\n"
            "  predict --weights W.h5 --inputs IN.h5 --out OUT.h5\n"
            "                                      eps_hat for the inputs (checkpoint or bare weights)\n"
            "  grad --weights W.h5 --inputs IN.h5 --out OUT.h5\n"
            "                                      loss and the gradient of every parameter\n"
            "  cei <deck> --ckpt CKPT [--n N] [--out DIR]\n"
            "                                      CEI score of every block (Ent-Prog), stored in CKPT\n"
            "  sample <deck> --ckpt CKPT [--steps S] [--eta E] [--guidance W] [--n N] [--input FILE]\n"
            "         [--out DIR] [--seed K] [--ema] [--clip C]\n"
            "                                      generate videos (DDIM) for test videos: samples.h5, GIFs, grid.png\n"
            "  eval --samples DIR/samples.h5 [--out FILE.json]\n"
            "                                      SSIM, PSNR, L1 and temporal metrics of generated videos\n");
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rc = 2;
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        rc = argc < 2 ? 2 : 0;
    } else if (!strcmp(argv[1], "train")) rc = cmd_train(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "predict")) rc = cmd_predict(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "grad")) rc = cmd_grad(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "datagen")) rc = cmd_datagen(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "cei")) rc = cmd_cei(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "sample")) rc = cmd_sample(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "eval")) rc = cmd_eval(argc - 1, argv + 1);
    else {
        fprintf(stderr, "entprog: error: unknown command '%s'\n", argv[1]);
        usage(stderr);
    }
    MPI_Finalize();
    return rc;
}
