"""DiT (Peebles & Xie, "Scalable Diffusion Models with Transformers", 2023),
written for the tests from the paper's description (adaLN-Zero blocks, the
"DiT-XL/2" naming) and the state-dict names of the public DiT repository, so
that `entprog import-dit` can be checked against DiT itself. Independent of
epvdit.py on purpose: nothing of EP-VDiT is reused here.

The pieces, as the paper describes them:
  * patchify: a p x p, stride p convolution C -> D ("x_embedder.proj"), plus the
    fixed 2-D sin-cos position table ("pos_embed", stored as a frozen parameter);
  * conditioning: c = MLP(sinusoidal(t)) + E[y], E a learned table of
    num_classes + 1 rows, the last one the "null" label of classifier-free guidance;
  * N adaLN-Zero blocks: (shift, scale, gate) for attention and for the MLP
    regressed from c by SiLU + Linear(D, 6D); LayerNorm without affine (eps 1e-6);
    multi-head self-attention (fused qkv) and an MLP with tanh-GELU, ratio 4;
  * final layer: adaLN (shift, scale) + LayerNorm + Linear(D, p*p*Co),
    Co = 2C with the learned variance (the noise is the first C channels);
  * unpatchify: per token (patch row, patch column, channel), channel fastest.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as Fn


def sinusoid_t(t, dim=256, max_period=10000.0):
    """[cos(t w_i), sin(t w_i)], w_i = max_period^(-i/(dim/2)), computed in float64."""
    half = dim // 2
    w = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    a = t.to(torch.float64)[:, None] * w[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1)


def sincos_grid(dim, gh, gw):
    """The 2-D table: half the channels for the column, half for the row; each half
    is [sin(pos w), cos(pos w)], w_i = 10000^(-i/(dim/4))."""
    def one(d, pos):
        w = 1.0 / 10000.0 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        a = pos[:, None] * w[None]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)
    row = torch.arange(gh, dtype=torch.float64)[:, None].expand(gh, gw).reshape(-1)
    col = torch.arange(gw, dtype=torch.float64)[None, :].expand(gh, gw).reshape(-1)
    return torch.cat([one(dim // 2, col), one(dim // 2, row)], dim=1)


def norm(x):
    return Fn.layer_norm(x, x.shape[-1:], eps=1e-6)


def shift_scale(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class TEmbed(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, t):
        return self.mlp(sinusoid_t(t).to(self.mlp[0].weight.dtype))


class YEmbed(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        self.embedding_table = nn.Embedding(n + 1, d)  # the last row: the null label

    def forward(self, y):
        return self.embedding_table(y)


class Patchify(nn.Module):
    def __init__(self, c, d, p):
        super().__init__()
        self.proj = nn.Conv2d(c, d, p, stride=p)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class SelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        n, s, d = x.shape
        q, k, v = self.qkv(x).reshape(n, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        return self.proj((w @ v).transpose(1, 2).reshape(n, s, d))


class FeedForward(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(Fn.gelu(self.fc1(x), approximate="tanh"))


class AdaLNZeroBlock(nn.Module):
    def __init__(self, d, heads, ratio=4):
        super().__init__()
        self.attn = SelfAttention(d, heads)
        self.mlp = FeedForward(d, ratio * d)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x, c):
        sa, ca, ga, sm, cm, gm = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + ga[:, None] * self.attn(shift_scale(norm(x), sa, ca))
        return x + gm[:, None] * self.mlp(shift_scale(norm(x), sm, cm))


class Final(nn.Module):
    def __init__(self, d, p, co):
        super().__init__()
        self.linear = nn.Linear(d, p * p * co)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(shift_scale(norm(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, input_size=32, patch_size=2, in_channels=4, hidden_size=1152, depth=28, num_heads=16,
                 mlp_ratio=4, num_classes=1000, learn_sigma=True):
        super().__init__()
        self.c, self.p, self.co = in_channels, patch_size, 2 * in_channels if learn_sigma else in_channels
        self.g = input_size // patch_size
        self.x_embedder = Patchify(in_channels, hidden_size, patch_size)
        self.t_embedder = TEmbed(hidden_size)
        self.y_embedder = YEmbed(num_classes, hidden_size)
        self.pos_embed = nn.Parameter(sincos_grid(hidden_size, self.g, self.g).float()[None], requires_grad=False)
        self.blocks = nn.ModuleList([AdaLNZeroBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = Final(hidden_size, patch_size, self.co)

    def forward(self, x, t, y, extra_tokens=None):
        """x [N,C,H,W], t [N], y [N] -> [N,Co,H,W]. extra_tokens [N,S,D] (tests only):
        added to the tokens with the position table (EP-VDiT's frame embedding)."""
        z = self.x_embedder(x) + self.pos_embed.to(x.dtype)
        if extra_tokens is not None:
            z = z + extra_tokens
        c = self.t_embedder(t) + self.y_embedder(y)
        for blk in self.blocks:
            z = blk(z, c)
        out = self.final_layer(z, c)  # [N, S, p*p*Co]
        n, g, p, co = x.shape[0], self.g, self.p, self.co
        return out.reshape(n, g, g, p, p, co).permute(0, 5, 1, 3, 2, 4).reshape(n, co, g * p, g * p)


@torch.no_grad()
def randomize(model, gen):
    """Every trainable tensor random and non-zero (DiT's own init zeroes the adaLN
    and final layers, which would make the comparison vacuous)."""
    for name, prm in model.named_parameters():
        if name == "pos_embed":
            continue
        if prm.dim() == 1:
            prm.copy_(0.1 * torch.randn(prm.shape, generator=gen, dtype=torch.float64))
        elif "adaLN" in name:
            prm.copy_(0.5 / math.sqrt(prm.shape[1]) * torch.randn(prm.shape, generator=gen, dtype=torch.float64))
        elif "embedding_table" in name:
            prm.copy_(0.5 * torch.randn(prm.shape, generator=gen, dtype=torch.float64))
        else:
            fan_out, fan_in = prm.shape[0], prm[0].numel()
            a = math.sqrt(6.0 / (fan_in + fan_out))
            prm.copy_(a * (2 * torch.rand(prm.shape, generator=gen, dtype=torch.float64) - 1))
    return model
