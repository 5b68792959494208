/* The command table: one row per sub-command. */
#include "cli/commands.h"
#include <string.h>

#define SUMMARY_COL 38 /* summaries start here when the usage fits before it */

const Command COMMANDS[] = {
    {"datagen", cmd_datagen, "<deck>", "write the synthetic human-video dataset and its preview"},
    {"train", cmd_train, "<deck> [--resume CKPT] [--set section.key=value ...]", "train EP-VDiT as the deck says"},
    {"predict", cmd_predict, "--weights W.h5 --inputs IN.h5 --out OUT.h5 [--backend cpu|cuda]",
     "eps_hat for the inputs (checkpoint or bare weights)"},
    {"grad", cmd_grad, "--weights W.h5 --inputs IN.h5 --out OUT.h5 [--backend cpu|cuda]",
     "loss and the gradient of every parameter"},
    {"cei", cmd_cei, "<deck> --ckpt CKPT [--n N] [--out DIR]", "CEI score of every block (Ent-Prog), stored in CKPT"},
    {"sample", cmd_sample,
     "<deck> --ckpt CKPT [--steps S] [--eta E] [--guidance W] [--n N] [--input FILE] [--out DIR] [--seed K] [--ema] "
     "[--clip C]",
     "generate videos (DDIM) for test videos: samples.h5, GIFs, grid.png"},
    {"eval", cmd_eval, "--samples DIR/samples.h5 [--out FILE.json]",
     "SSIM, PSNR, L1 and temporal metrics of generated videos"},
    {"export", cmd_export, "--ckpt CKPT --out MODEL.safetensors [--ema] [--dtype fp32|bf16]",
     "the model's weights as safetensors, PyTorch names (docs/weights.md)"},
    {"import-dit", cmd_import_dit, "<deck> --dit DIT.safetensors --out W.safetensors [--label K|null] [--seed N]",
     "EP-VDiT weights from a DiT checkpoint (docs/weights.md)"},
    {"import-video", cmd_import_video,
     "<deck> --videos DIR (--poses DIR | --pose-videos DIR) [--out DIR] [--fps F] [--skip-bad] ...",
     "real videos with OpenPose keypoints or rendered pose videos into the dataset (docs/data.md)"},
    {"encode", cmd_encode, "--vae VAE.safetensors (--in IMAGES.h5 [--dataset NAME] | --dataset-in FILE|DIR) --out OUT",
     "images [N,3,H,W] or a pixel-space dataset -> SD VAE latents, 8x smaller (CPU, MPI ranks; docs/vae.md)"},
    {"decode", cmd_decode, "--vae VAE.safetensors --in LATENTS.h5 --out IMAGES.h5 [--dataset NAME]",
     "SD VAE latents -> images (CPU; docs/vae.md)"},
};
const int N_COMMANDS = sizeof COMMANDS / sizeof *COMMANDS;

const Command *command_find(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(COMMANDS[i].name, name)) return &COMMANDS[i];
    return NULL;
}

void command_usage(FILE *out, const Command *c) { fprintf(out, "usage: entprog %s %s", c->name, c->synopsis); }

void commands_help(FILE *out) {
    fprintf(out, "usage: entprog <command> [options]   (entprog <command> --help: its options)\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) {
        const Command *c = &COMMANDS[i];
        int w = fprintf(out, "  %s %s", c->name, c->synopsis);
        if (w < SUMMARY_COL) fprintf(out, "%*s%s\n", SUMMARY_COL - w, "", c->summary);
        else fprintf(out, "\n  %*s%s\n", SUMMARY_COL - 2, "", c->summary);
    }
}
