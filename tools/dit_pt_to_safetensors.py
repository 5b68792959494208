#!/usr/bin/python3
"""DiT .pt checkpoint -> safetensors, for `entprog import-dit`:
    tools/dit_pt_to_safetensors.py DiT-XL-2-512x512.pt DiT-XL-2-512x512.safetensors
The one line that matters is the last; the format is written here directly
(8-byte header length, JSON header, raw little-endian data) so that no
`safetensors` package is needed."""
import json, struct, sys
import torch


def save(sd, path):
    sd = {k: v.detach().float().contiguous().cpu() for k, v in sd.items()}
    header, off = {}, 0
    for k, v in sd.items():
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + 4 * v.numel()]}
        off += 4 * v.numel()
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for v in sd.values():
            f.write(v.numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True); save(sd.get("ema", sd.get("model", sd)), sys.argv[2])
