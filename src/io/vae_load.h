/* The SD VAE (model/vae.h) from a diffusers AutoencoderKL safetensors file
 * (`diffusion_pytorch_model.safetensors`, docs/vae.md). */
#pragma once
#include "model/vae.h"

/* Reads the configuration off the tensors' shapes (levels, channels, layers,
 * latent channels, which optional parts exist); norm_num_groups,
 * scaling_factor and shift_factor come from the file's __metadata__ if it has
 * them, else from the config.json beside it, else the SD values 32, 0.18215
 * and 0. Then builds v and reads every tensor (F32, F16 or BF16). Dies naming
 * the tensor and file on a missing tensor, a wrong shape, a tensor the
 * configuration does not have, or a non-finite value. Attention weights may
 * carry the older names (query, key, value, proj_attn) and 1x1 conv shapes. */
void vae_load(Vae *v, const char *path);
