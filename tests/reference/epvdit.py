"""PyTorch reference implementation of EP-VDiT (the contract: docs/model.md).

Written to be read next to docs/model.md: one function or module per numbered piece,
no fusion, no tricks. Works in float32 and float64 (call ``.double()``); the
fixed sinusoidal tables are always computed in float64 and cast to the dtype of
the model at use.

State-dict names and shapes are exactly the "Parameter names" of docs/model.md.

Choices where docs/model.md is silent (also listed in docs/verification.md):
  * 2-D position embedding for a non-square grid (Hp x Wp): token k = row*Wp + col,
    channels [0, D/2) are the 1-D embedding of col, [D/2, D) of row (this is
    DiT's convention, which only shows the square case).
  * The pose-guider output (incl. the bias of its zero Linear) is added to the
    video tokens together with the patch, position and frame embeddings, before
    block 0; drop_pose multiplies the whole term by 0 for that sample.
  * drop_ref: the bank keys of that sample are masked with -inf before the
    softmax, which equals attention over the S frame keys exactly (exp(-inf)=0);
    ``forward_per_sample`` computes the same thing without any mask, as a check.
  * skip(b): block b is the identity in both passes and stores no bank; the
    reference pass stops after the bank of the last non-skipped block.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as Fn

T_STEPS = 1000
LN_EPS = 1e-6


# ---------------------------------------------------------------------------
# Diffusion helpers (docs/model.md "Diffusion")
# ---------------------------------------------------------------------------
def betas(T=T_STEPS):
    """Linear betas 1e-4 .. 0.02, float64 (same as numpy.linspace)."""
    return torch.linspace(1e-4, 0.02, T, dtype=torch.float64)


def alphas_cumprod(T=T_STEPS):
    return torch.cumprod(1.0 - betas(T), dim=0)


def q_sample(x0, t, eps, T=T_STEPS):
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t [B] integer."""
    abar = alphas_cumprod(T)[t.long()]
    shape = (-1,) + (1,) * (x0.dim() - 1)
    a = abar.sqrt().view(shape).to(x0.dtype)
    b = (1.0 - abar).sqrt().view(shape).to(x0.dtype)
    return a * x0 + b * eps


# ---------------------------------------------------------------------------
# Fixed sinusoidal tables (float64)
# ---------------------------------------------------------------------------
def sincos_1d(dim, pos):
    """DiT's 1-D helper: omega_i = 1/10000^(i/(dim/2)), i < dim/2;
    emb = [sin(pos*omega), cos(pos*omega)] (sin first). pos: 1-D float64."""
    assert dim % 2 == 0
    half = dim // 2
    omega = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float64) / half))
    ang = pos.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)


def pos_embed_2d(dim, hp, wp):
    """DiT's 2-D sin-cos embedding, [hp*wp, dim]: first half encodes the column."""
    assert dim % 4 == 0
    rows = torch.arange(hp, dtype=torch.float64).repeat_interleave(wp)  # token k -> k // wp
    cols = torch.arange(wp, dtype=torch.float64).repeat(hp)  # token k -> k % wp
    return torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)


def frame_embed(dim, nframes):
    """1-D sin-cos embedding of the frame index, [F, dim]."""
    return sincos_1d(dim, torch.arange(nframes, dtype=torch.float64))


def timestep_features(t, n=256):
    """e(t) = [cos(t f), sin(t f)], f_i = exp(-ln(10000) i / 128) (cos first), float64."""
    half = n // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    ang = t.to(torch.float64)[:, None] * f[None, :]
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=1)


# ---------------------------------------------------------------------------
# Small pieces
# ---------------------------------------------------------------------------
def layer_norm(x):
    return Fn.layer_norm(x, (x.shape[-1],), weight=None, bias=None, eps=LN_EPS)


def modulate(u, shift, scale):
    return u * (1.0 + scale) + shift


def gelu_tanh(x):
    return Fn.gelu(x, approximate="tanh")


def attend(q, k, v, nh, key_valid=None):
    """Multi-head softmax attention. q [N,Tq,D], k/v [N,Tk,D];
    key_valid [N,Tk] bool or None. Returns [N,Tq,D] (heads concatenated)."""
    n, tq, d = q.shape
    tk = k.shape[1]
    dh = d // nh
    qh = q.reshape(n, tq, nh, dh).transpose(1, 2)  # N,NH,Tq,dh
    kh = k.reshape(n, tk, nh, dh).transpose(1, 2)
    vh = v.reshape(n, tk, nh, dh).transpose(1, 2)
    s = torch.matmul(qh, kh.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
    if key_valid is not None:
        s = s.masked_fill(~key_valid[:, None, None, :], float("-inf"))
    a = torch.softmax(s, dim=-1)
    o = torch.matmul(a, vh)  # N,NH,Tq,dh
    return o.transpose(1, 2).reshape(n, tq, d)


class Attention(nn.Module):
    """One fused qkv Linear D -> 3D (rows q, k, v, head-major in each) and proj."""

    def __init__(self, d):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)


class Mlp(nn.Module):
    def __init__(self, d, dm):
        super().__init__()
        self.fc1 = nn.Linear(d, dm)
        self.fc2 = nn.Linear(dm, d)

    def forward(self, u):
        return self.fc2(gelu_tanh(self.fc1(u)))


class TimestepEmbedder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, t):
        e = timestep_features(t).to(self.mlp[0].weight.dtype)
        return self.mlp(e)


class PatchEmbed(nn.Module):
    def __init__(self, c, d, p):
        super().__init__()
        self.proj = nn.Conv2d(c, d, kernel_size=p, stride=p)

    def forward(self, x):
        """x [N,C,H,W] -> tokens [N,S,D], row-major over the patch grid."""
        return self.proj(x).flatten(2).transpose(1, 2)


class PoseGuider(nn.Module):
    def __init__(self, cp, cg, d, p, g):
        super().__init__()
        self.conv_in = nn.Conv2d(cp, cg, 3, stride=1, padding=1)
        self.down = nn.ModuleList([nn.Conv2d(cg, cg, 3, stride=2, padding=1) for _ in range(g)])
        self.patch = nn.Conv2d(cg, d, kernel_size=p, stride=p)
        self.zero = nn.Linear(d, d)

    def forward(self, pose):
        """pose [N,Cp,sH,sW] -> [N,S,D]."""
        g = Fn.silu(self.conv_in(pose))
        for conv in self.down:
            g = Fn.silu(conv(g))
        tok = self.patch(g).flatten(2).transpose(1, 2)
        return self.zero(tok)


class Block(nn.Module):
    """adaLN-Zero block with spatial (+bank), temporal and MLP sub-layers."""

    def __init__(self, d, nh, dm):
        super().__init__()
        self.nh = nh
        self.ada = nn.Linear(d, 9 * d)
        self.attn_s = Attention(d)
        self.attn_t = Attention(d)
        self.mlp = Mlp(d, dm)

    def mods(self, c):
        return self.ada(Fn.silu(c)).chunk(9, dim=-1)  # 9 x [B,D]

    def forward_ref(self, r, c_ref, last):
        """Reference pass. r [B,S,D]. Returns (r_next or None, bank [B,S,D])."""
        sh_s, sc_s, g_s, _, _, _, sh_m, sc_m, g_m = self.mods(c_ref)
        bank = modulate(layer_norm(r), sh_s[:, None], sc_s[:, None])
        if last:
            return None, bank
        q, k, v = self.attn_s.qkv(bank).chunk(3, dim=-1)
        r = r + g_s[:, None] * self.attn_s.proj(attend(q, k, v, self.nh))
        u = modulate(layer_norm(r), sh_m[:, None], sc_m[:, None])
        r = r + g_m[:, None] * self.mlp(u)
        return r, bank

    def forward_video(self, z, c, bank, bank_valid, fe=None):
        """Video pass. z [B,F,S,D], c [B,D], bank [B,S,D] or None,
        bank_valid [B] bool or None (None: every sample has its bank),
        fe [F,D]: the frame embedding, added to the temporal attention's input
        (model.frame_embed = temporal), or None."""
        b, f, s, d = z.shape
        sh_s, sc_s, g_s, sh_t, sc_t, g_t, sh_m, sc_m, g_m = [m[:, None, None] for m in self.mods(c)]

        # spatial attention over the frame's S tokens and the S bank tokens
        u = modulate(layer_norm(z), sh_s, sc_s)
        q, k, v = self.attn_s.qkv(u).chunk(3, dim=-1)  # [B,F,S,D] each
        valid = None
        if bank is not None:
            kb, vb = self.attn_s.qkv(bank).chunk(3, dim=-1)[1:]  # [B,S,D]
            k = torch.cat([k, kb[:, None].expand(b, f, s, d)], dim=2)
            v = torch.cat([v, vb[:, None].expand(b, f, s, d)], dim=2)
            if bank_valid is not None and not bool(bank_valid.all()):
                own = torch.ones(b, s, dtype=torch.bool, device=z.device)
                other = bank_valid[:, None].expand(b, s)
                valid = torch.cat([own, other], dim=1)[:, None].expand(b, f, 2 * s)
                valid = valid.reshape(b * f, 2 * s)
        tk = k.shape[2]
        o = attend(q.reshape(b * f, s, d), k.reshape(b * f, tk, d), v.reshape(b * f, tk, d), self.nh, valid)
        z = z + g_s * self.attn_s.proj(o.reshape(b, f, s, d))

        # temporal attention across frames, per spatial position
        if f > 1:
            u = modulate(layer_norm(z), sh_t, sc_t)
            if fe is not None:
                u = u + fe[None, :, None, :]
            u = u.permute(0, 2, 1, 3).reshape(b * s, f, d)
            q, k, v = self.attn_t.qkv(u).chunk(3, dim=-1)
            o = attend(q, k, v, self.nh).reshape(b, s, f, d).permute(0, 2, 1, 3)
            z = z + g_t * self.attn_t.proj(o)

        # MLP
        u = modulate(layer_norm(z), sh_m, sc_m)
        z = z + g_m * self.mlp(u)
        return z


class FinalLayer(nn.Module):
    def __init__(self, d, p, c):
        super().__init__()
        self.ada = nn.Linear(d, 2 * d)
        self.linear = nn.Linear(d, p * p * c)

    def forward(self, z, c):
        shift, scale = self.ada(Fn.silu(c)).chunk(2, dim=-1)
        while shift.dim() < z.dim():
            shift, scale = shift.unsqueeze(1), scale.unsqueeze(1)
        return self.linear(modulate(layer_norm(z), shift, scale))


class EPVDiT(nn.Module):
    def __init__(self, F=4, C=3, H=16, W=16, p=2, D=32, NH=2, L=3, mlp_ratio=4, Cp=3, s=2, Cg=8,
                 frame_embed="input"):
        super().__init__()
        assert frame_embed in ("input", "temporal")
        self.frame_embed_at = frame_embed  # where the frame embedding goes (docs/model.md item 3)
        assert H % p == 0 and W % p == 0 and D % NH == 0 and D % 4 == 0
        G = int(round(math.log2(s)))
        assert 2 ** G == s, "s must be a power of two"
        self.cfg = dict(F=F, C=C, H=H, W=W, p=p, D=D, NH=NH, L=L, mlp_ratio=mlp_ratio, Cp=Cp, s=s, Cg=Cg)
        self.F, self.C, self.H, self.W, self.p, self.D, self.NH, self.L = F, C, H, W, p, D, NH, L
        self.Cp, self.s, self.Cg, self.G = Cp, s, Cg, G
        self.hp, self.wp = H // p, W // p
        self.S = self.hp * self.wp
        self.t_embed = TimestepEmbedder(D)
        self.x_embed = PatchEmbed(C, D, p)
        self.pose_guider = PoseGuider(Cp, Cg, D, p, G)
        self.blocks = nn.ModuleList([Block(D, NH, mlp_ratio * D) for _ in range(L)])
        self.final = FinalLayer(D, p, C)

    # -- embeddings -------------------------------------------------------
    def _dtype(self):
        return self.x_embed.proj.weight.dtype

    def pos(self):
        return pos_embed_2d(self.D, self.hp, self.wp).to(self._dtype())

    def unpatchify(self, out, nframes):
        """out [B,F,S,p*p*C] -> [B,F,C,H,W]; per token (patch row, patch col, c), c fastest."""
        b = out.shape[0]
        p, c = self.p, self.C
        x = out.reshape(b, nframes, self.hp, self.wp, p, p, c)
        x = x.permute(0, 1, 6, 2, 4, 3, 5)  # B,F,C,hp,pi,wp,pj
        return x.reshape(b, nframes, c, self.H, self.W)

    # -- reference pass ---------------------------------------------------
    def reference_banks(self, ref, skip=()):
        """Returns {b: bank_b [B,S,D]} for every non-skipped block."""
        b = ref.shape[0]
        active = [i for i in range(self.L) if i not in skip]
        if not active:
            return {}
        c_ref = self.t_embed(torch.zeros(b, dtype=torch.long, device=ref.device))
        r = self.x_embed(ref) + self.pos()[None]
        banks = {}
        for i in active:
            r, banks[i] = self.blocks[i].forward_ref(r, c_ref, last=(i == active[-1]))
        return banks

    # -- full forward -----------------------------------------------------
    def forward(self, x, t, ref, pose, drop_ref=None, drop_pose=None, skip=()):
        """x [B,F,C,H,W], t [B] int, ref [B,C,H,W], pose [B,F,Cp,sH,sW],
        drop_ref/drop_pose [B] bool (None: no drop). Returns eps_hat [B,F,C,H,W]."""
        b, f = x.shape[0], x.shape[1]
        skip = set(skip)
        dev = x.device
        if drop_ref is None:
            drop_ref = torch.zeros(b, dtype=torch.bool, device=dev)
        if drop_pose is None:
            drop_pose = torch.zeros(b, dtype=torch.bool, device=dev)
        drop_ref, drop_pose = drop_ref.bool(), drop_pose.bool()

        c = self.t_embed(t)
        z = self.x_embed(x.reshape(b * f, self.C, self.H, self.W)).reshape(b, f, self.S, self.D)
        z = z + self.pos()[None, None]
        fe = frame_embed(self.D, f).to(z.dtype) if f > 1 else None
        if fe is not None and self.frame_embed_at == "input":
            z = z + fe[None, :, None, :]
        fe_t = fe if self.frame_embed_at == "temporal" else None
        g = self.pose_guider(pose.reshape(b * f, self.Cp, self.s * self.H, self.s * self.W))
        keep_pose = (~drop_pose).to(z.dtype)[:, None, None, None]
        z = z + keep_pose * g.reshape(b, f, self.S, self.D)

        keep_ref = ~drop_ref
        banks = self.reference_banks(ref, skip) if bool(keep_ref.any()) else {}
        for i, blk in enumerate(self.blocks):
            if i in skip:
                continue
            z = blk.forward_video(z, c, banks.get(i), keep_ref if banks else None, fe_t)
        out = self.final(z, c)
        return self.unpatchify(out, f)

    def forward_per_sample(self, x, t, ref, pose, drop_ref=None, drop_pose=None, skip=()):
        """Same result as forward(), one sample at a time, with no attention mask:
        a dropped reference gives bank None (S keys); a dropped pose skips the guider."""
        outs = []
        for i in range(x.shape[0]):
            dr = drop_ref is not None and bool(drop_ref[i])
            dp = drop_pose is not None and bool(drop_pose[i])
            xi, ti, refi, posei = x[i:i + 1], t[i:i + 1], ref[i:i + 1], pose[i:i + 1]
            f = xi.shape[1]
            c = self.t_embed(ti)
            z = self.x_embed(xi.reshape(f, self.C, self.H, self.W)).reshape(1, f, self.S, self.D)
            z = z + self.pos()[None, None]
            fe = frame_embed(self.D, f).to(z.dtype) if f > 1 else None
            if fe is not None and self.frame_embed_at == "input":
                z = z + fe[None, :, None, :]
            fe_t = fe if self.frame_embed_at == "temporal" else None
            if not dp:
                z = z + self.pose_guider(posei.reshape(f, self.Cp, self.s * self.H, self.s * self.W)).reshape(
                    1, f, self.S, self.D)
            banks = {} if dr else self.reference_banks(refi, set(skip))
            for j, blk in enumerate(self.blocks):
                if j in skip:
                    continue
                z = blk.forward_video(z, c, banks.get(j), None, fe_t)
            outs.append(self.unpatchify(self.final(z, c), f))
        return torch.cat(outs, dim=0)


def loss_fn(eps_hat, eps):
    """docs/model.md loss: mean over all elements of (eps_hat - eps)^2."""
    return ((eps_hat - eps) ** 2).mean()


# ---------------------------------------------------------------------------
# Initialisations
# ---------------------------------------------------------------------------
def _xavier_bound(w):
    fan_out = w.shape[0]
    fan_in = w.numel() // fan_out
    return math.sqrt(6.0 / (fan_in + fan_out))


def _zero_init_names(model):
    """Parameters that docs/model.md initialises to zero (besides every bias)."""
    names = {"pose_guider.zero.weight", "final.ada.weight", "final.linear.weight"}
    for b in range(model.L):
        names.add(f"blocks.{b}.ada.weight")
        names.add(f"blocks.{b}.attn_t.proj.weight")
    return names


@torch.no_grad()
def init_model_md(model, gen):
    """docs/model.md initialisation: Xavier-uniform (convs viewed as [out, in*k*k]),
    zero biases, timestep MLP weights N(0, 0.02), adaLN-Zero tensors zero."""
    zeros = _zero_init_names(model)
    for name, prm in model.named_parameters():
        if prm.dim() == 1 or name in zeros:
            prm.zero_()
        elif name.startswith("t_embed.mlp."):
            prm.copy_(0.02 * torch.randn(prm.shape, generator=gen, dtype=torch.float64))
        else:
            a = _xavier_bound(prm)
            prm.copy_(a * (2.0 * torch.rand(prm.shape, generator=gen, dtype=torch.float64) - 1.0))
    return model


@torch.no_grad()
def init_random_nonzero(model, gen):
    """Test initialisation: every tensor random and non-zero (including the ones
    docs/model.md zero-initialises), scaled so activations stay O(1) and softmaxes
    stay soft. Weights: Xavier-uniform (ada weights 0.5/sqrt(D) * N(0,1), the
    final linear and zero Linear Xavier too); biases 0.1 * N(0,1)."""
    d = model.D
    for name, prm in model.named_parameters():
        if prm.dim() == 1:
            val = 0.1 * torch.randn(prm.shape, generator=gen, dtype=torch.float64)
        elif name.endswith(".ada.weight"):
            val = (0.5 / math.sqrt(d)) * torch.randn(prm.shape, generator=gen, dtype=torch.float64)
        else:
            a = _xavier_bound(prm)
            val = a * (2.0 * torch.rand(prm.shape, generator=gen, dtype=torch.float64) - 1.0)
        prm.copy_(val)
    return model


def expected_param_shapes(cfg):
    """docs/model.md "Parameter names" table, for checking the module against it."""
    D, C, p, Cg, Cp = cfg["D"], cfg["C"], cfg["p"], cfg["Cg"], cfg["Cp"]
    Dm = cfg["mlp_ratio"] * D
    G = int(round(math.log2(cfg["s"])))
    sh = {
        "t_embed.mlp.0.weight": (D, 256), "t_embed.mlp.0.bias": (D,),
        "t_embed.mlp.2.weight": (D, D), "t_embed.mlp.2.bias": (D,),
        "x_embed.proj.weight": (D, C, p, p), "x_embed.proj.bias": (D,),
        "pose_guider.conv_in.weight": (Cg, Cp, 3, 3), "pose_guider.conv_in.bias": (Cg,),
    }
    for i in range(G):
        sh[f"pose_guider.down.{i}.weight"] = (Cg, Cg, 3, 3)
        sh[f"pose_guider.down.{i}.bias"] = (Cg,)
    sh.update({
        "pose_guider.patch.weight": (D, Cg, p, p), "pose_guider.patch.bias": (D,),
        "pose_guider.zero.weight": (D, D), "pose_guider.zero.bias": (D,),
    })
    for b in range(cfg["L"]):
        pre = f"blocks.{b}."
        sh.update({
            pre + "ada.weight": (9 * D, D), pre + "ada.bias": (9 * D,),
            pre + "attn_s.qkv.weight": (3 * D, D), pre + "attn_s.qkv.bias": (3 * D,),
            pre + "attn_s.proj.weight": (D, D), pre + "attn_s.proj.bias": (D,),
            pre + "attn_t.qkv.weight": (3 * D, D), pre + "attn_t.qkv.bias": (3 * D,),
            pre + "attn_t.proj.weight": (D, D), pre + "attn_t.proj.bias": (D,),
            pre + "mlp.fc1.weight": (Dm, D), pre + "mlp.fc1.bias": (Dm,),
            pre + "mlp.fc2.weight": (D, Dm), pre + "mlp.fc2.bias": (D,),
        })
    sh.update({
        "final.ada.weight": (2 * D, D), "final.ada.bias": (2 * D,),
        "final.linear.weight": (p * p * C, D), "final.linear.bias": (p * p * C,),
    })
    return sh
