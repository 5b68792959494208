#!/usr/bin/python3
"""Writes tests/fixtures/vae_tiny.safetensors, the random-weight VAE of the
latent-space pipeline test (tests/check_vae_pipeline.py): diffusers'
AutoencoderKL with SD's factor 8 (4 levels) but 8 channels a level, one
resnet a level, 4 GroupNorm groups (in __metadata__, so no config.json is
needed), 4 latent channels; float16 to keep the file small (entprog reads it
as fp32). Seeded, offline. Run once with the venv of tests/vae_venv.sh:
    build/venv-diffusers/bin/python tools/make_vae_tiny.py tests/fixtures/vae_tiny.safetensors"""
import sys

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

torch.manual_seed(13)
vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8),
                    layers_per_block=1, norm_num_groups=4, latent_channels=4, sample_size=32)
sd = {k: v.detach().to(torch.float16).contiguous() for k, v in vae.state_dict().items()}
save_file(sd, sys.argv[1], metadata={"norm_num_groups": "4", "scaling_factor": "0.18215", "shift_factor": "0"})
print(f"{sys.argv[1]}: {sum(v.numel() for v in sd.values())} parameters")
