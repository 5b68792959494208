/* A pixel-space dataset file (docs/formats.md: /frames uint8 [N,T,3,H,W])
 * into the SD VAE's latent space (`entprog encode --dataset-in`, docs/vae.md):
 * /latents becomes [N,T,4,H/f,W/f] float32, the VAE's encoding of /frames
 * (f = 8 for SD); /pose, /frames and every other dataset are copied as they
 * are, so the pose maps stay at the pixel resolution and a latent deck takes
 * model.s = f * the pixel deck's s; /keypoints (latent pixels) are divided by
 * f. Root attributes: the input's, with latent_space "AutoencoderKL",
 * latent_scale and latent_shift (the VAE's), vae (its file), vae_factor f
 * and pose_scale f * s. */
#pragma once
#include "model/vae.h"
#include <mpi.h>

#define ENCODED_LATENT_SPACE "AutoencoderKL"

/* Encodes `in` into `out` through `<out>.tmp`, renamed when complete. Video by
 * video: never more than one video's frames in memory. With several ranks in
 * comm (every rank calls), rank r encodes videos r, r + R, ... and all write
 * one file collectively (parallel HDF5); rank 0 copies the other datasets
 * first. Dies naming the file on a dataset it cannot encode. Returns the
 * encoding seconds (rank 0: the slowest rank's). */
double encode_dataset(const Vae *v, const char *vae_path, const char *in, const char *out, MPI_Comm comm);
