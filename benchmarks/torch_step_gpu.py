#!/usr/bin/env python3
"""PyTorch baseline for the GPU benchmark: EP-VDiT (docs/model.md) in idiomatic,
fast PyTorch (fused qkv, batched frames, F.scaled_dot_product_attention, autocast bf16).

  python3 benchmarks/torch_step_gpu.py --device cuda --dtype bf16 --deck inputs/paper.ini \
      [--freeze-first K [--train-inputs]] [--compile] [--json out.json]     # time a step
  /usr/bin/python3 benchmarks/torch_step_gpu.py --check [--device cuda] [--dtype fp32]

A step is forward + MSE loss on eps + backward + AdamW (lr 1e-4, wd 0.01; fused where
available); bf16 = autocast with fp32 master weights. --check compares eps_hat, loss and
all gradients with the float64 reference (tests/reference/epvdit.py) given the same
(perturbed, all non-zero) parameters. Shape: `small` by default; --deck reads [model] and
train.batch of an entprog deck (missing keys: docs/deck.md defaults); --B/--F/... override.
Weights: docs/model.md's init with attn_t.proj Xavier (its "Choices" section), plus 1e-3 N(0,1) noise as in
benchmarks/torch_step.py. --freeze-first K freezes blocks 0..K-1 and, as entprog does by
default (docs/entprog.md), the input side (timestep MLP, patch embedding, pose guider), so
these run under torch.no_grad and store no activations; with --train-inputs the input side
trains and frozen blocks pass input gradients. PyTorch 1.13 (no SDPA, fused AdamW or
compile) falls back to plain softmax attention and the default AdamW.
"""
import argparse, configparser, contextlib, inspect, json, math, os, resource, shlex, statistics, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as Fn

T_STEPS = 1000
LN_EPS = 1e-6
SMALL = dict(B=4, F=8, C=3, H=32, W=32, p=4, D=128, NH=4, L=6, mlp_ratio=4, Cp=3, s=2, Cg=16)
DECK_DEFAULTS = dict(B=2, F=4, C=3, H=16, W=16, p=2, D=32, NH=2, L=3, mlp_ratio=4, Cp=3, s=2, Cg=8)
HAVE_SDPA = hasattr(Fn, "scaled_dot_product_attention")


# ----------------------------------------------------------------------------- pieces
def attention(q, k, v, mask=None):
    """q [N,NH,Tq,dh], k/v [N,NH,Tk,dh]; mask: bool, True = may attend, broadcast to [N,NH,Tq,Tk]."""
    if HAVE_SDPA:
        return Fn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    s = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)  # PyTorch < 2.0
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


def ln(x):  # LayerNorm without affine parameters
    return Fn.layer_norm(x, x.shape[-1:], eps=LN_EPS)


def modulate(u, shift, scale):
    return u * (1 + scale) + shift


def sincos_1d(dim, pos):
    """DiT's 1-D helper, float64: [sin(pos w), cos(pos w)], w_i = 10000^(-i/(dim/2))."""
    half = dim // 2
    omega = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float64) / half))
    ang = pos.to(torch.float64)[:, None] * omega[None]
    return torch.cat([ang.sin(), ang.cos()], dim=1)


def split_heads(x, n, nh):
    """x [N,T,n*D] -> n tensors [N,NH,T,dh] (rows q,k,v then head-major, as timm)."""
    N, T, _ = x.shape
    return x.view(N, T, n, nh, -1).permute(2, 0, 3, 1, 4).unbind(0)


def holder(**children):  # a parameter namespace such as `attn_s.qkv` (state-dict names of docs/model.md)
    m = nn.Module()
    for k, v in children.items():
        setattr(m, k, v)
    return m


class PoseGuider(nn.Module):
    def __init__(self, cp, cg, d, p, g):
        super().__init__()
        self.conv_in = nn.Conv2d(cp, cg, 3, padding=1)
        self.down = nn.ModuleList([nn.Conv2d(cg, cg, 3, stride=2, padding=1) for _ in range(g)])
        self.patch = nn.Conv2d(cg, d, p, stride=p)
        self.zero = nn.Linear(d, d)

    def forward(self, pose):  # [N,Cp,sH,sW] -> [N,S,D]
        g = Fn.silu(self.conv_in(pose))
        for conv in self.down:
            g = Fn.silu(conv(g))
        return self.zero(self.patch(g).flatten(2).transpose(1, 2))


class Block(nn.Module):
    """adaLN-Zero block: spatial attention (+ reference bank), temporal attention, MLP."""

    def __init__(self, d, nh, dm):
        super().__init__()
        self.nh = nh
        self.ada = nn.Linear(d, 9 * d)
        self.attn_s = holder(qkv=nn.Linear(d, 3 * d), proj=nn.Linear(d, d))
        self.attn_t = holder(qkv=nn.Linear(d, 3 * d), proj=nn.Linear(d, d))
        self.mlp = holder(fc1=nn.Linear(d, dm), fc2=nn.Linear(dm, d))

    def ffn(self, u):
        return self.mlp.fc2(Fn.gelu(self.mlp.fc1(u), approximate="tanh"))

    def forward_ref(self, r, m, last):
        """Reference pass, r [B,S,D], m: 9 modulations [1,1,D]. Returns (r_next, bank)."""
        sh_s, sc_s, g_s, _, _, _, sh_m, sc_m, g_m = m
        bank = modulate(ln(r), sh_s, sc_s)
        if last:  # only the bank of the last block is used
            return None, bank
        b, s, d = r.shape
        q, k, v = split_heads(self.attn_s.qkv(bank), 3, self.nh)
        o = attention(q, k, v).transpose(1, 2).reshape(b, s, d)
        r = r + g_s * self.attn_s.proj(o)
        return r + g_m * self.ffn(modulate(ln(r), sh_m, sc_m)), bank

    def forward_video(self, z, m, bank, mask):
        """Video pass, z [B,F,S,D], m: 9 modulations [B,1,1,D], bank [B,S,D] or None,
        mask [B*F,1,1,2S] bool or None."""
        b, f, s, d = z.shape
        nh, dh = self.nh, d // self.nh
        sh_s, sc_s, g_s, sh_t, sc_t, g_t, sh_m, sc_m, g_m = m
        # spatial: every frame's S queries see its S tokens and the S bank tokens
        u = modulate(ln(z), sh_s, sc_s)
        q, k, v = split_heads(self.attn_s.qkv(u).view(b * f, s, 3 * d), 3, nh)
        if bank is not None:  # k, v rows of the same qkv Linear, applied to the bank
            qkv = self.attn_s.qkv
            kb, vb = split_heads(Fn.linear(bank, qkv.weight[d:], qkv.bias[d:]), 2, nh)
            k, v = (torch.cat([own.view(b, f, nh, s, dh), bk[:, None].expand(b, f, nh, s, dh)], dim=3)
                    .view(b * f, nh, 2 * s, dh) for own, bk in ((k, kb), (v, vb)))  # one copy each
        o = attention(q, k, v, mask).transpose(1, 2).reshape(b, f, s, d)
        z = z + g_s * self.attn_s.proj(o)
        # temporal: for each spatial position, attention across the F frames
        if f > 1:
            u = modulate(ln(z), sh_t, sc_t)
            qkv = self.attn_t.qkv(u).view(b, f, s, 3, nh, dh).permute(3, 0, 2, 4, 1, 5)
            q, k, v = qkv.reshape(3, b * s, nh, f, dh).unbind(0)
            o = attention(q, k, v).view(b, s, nh, f, dh).permute(0, 3, 1, 2, 4).reshape(b, f, s, d)
            z = z + g_t * self.attn_t.proj(o)
        # MLP
        return z + g_m * self.ffn(modulate(ln(z), sh_m, sc_m))


class EPVDiT(nn.Module):
    def __init__(self, F, C, H, W, p, D, NH, L, mlp_ratio, Cp, s, Cg):
        super().__init__()
        G = int(round(math.log2(s)))
        assert H % p == 0 and W % p == 0 and D % NH == 0 and D % 4 == 0 and 2 ** G == s, "bad shape"
        self.F, self.C, self.H, self.W, self.p, self.D, self.L, self.Cp, self.s = F, C, H, W, p, D, L, Cp, s
        self.hp, self.wp = H // p, W // p
        self.S = self.hp * self.wp
        self.no_grad_prefix = 0  # input side + this many leading blocks run under torch.no_grad
        self.t_embed = holder(mlp=nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D)))
        self.x_embed = holder(proj=nn.Conv2d(C, D, p, stride=p))
        self.pose_guider = PoseGuider(Cp, Cg, D, p, G)
        self.blocks = nn.ModuleList([Block(D, NH, mlp_ratio * D) for _ in range(L)])
        self.final = holder(ada=nn.Linear(D, 2 * D), linear=nn.Linear(D, p * p * C))
        # fixed tables, built in float64 (cast with the module: call .to(dtype) before use)
        fr = torch.exp(-math.log(10000.0) * torch.arange(128, dtype=torch.float64) / 128)
        ang = torch.arange(T_STEPS, dtype=torch.float64)[:, None] * fr[None]
        self.register_buffer("t_table", torch.cat([ang.cos(), ang.sin()], 1), persistent=False)  # e(t)
        rows = torch.arange(self.hp).repeat_interleave(self.wp)
        cols = torch.arange(self.wp).repeat(self.hp)  # first half of the channels: column
        pos = torch.cat([sincos_1d(D // 2, cols), sincos_1d(D // 2, rows)], 1)
        self.register_buffer("pos", pos, persistent=False)  # [S,D]
        self.register_buffer("frame", sincos_1d(D, torch.arange(F)), persistent=False)  # [F,D]

    def forward(self, x, t, ref, pose, drop_ref=None, drop_pose=None):
        """x [B,F,C,H,W], t [B] int, ref [B,C,H,W], pose [B,F,Cp,sH,sW], drop_* [B] bool or None."""
        b, f = x.shape[:2]
        S, D = self.S, self.D
        k0 = self.no_grad_prefix
        grad_ctx = (lambda i: torch.no_grad() if i < k0 else contextlib.nullcontext())
        use_ref = drop_ref is None or not bool(drop_ref.all())
        mask = None
        if use_ref and drop_ref is not None and bool(drop_ref.any()):  # some samples lose their bank keys
            keep = torch.cat([torch.ones(b, S, dtype=torch.bool, device=x.device),
                              (~drop_ref.bool())[:, None].expand(b, S)], dim=1)
            mask = keep[:, None].expand(b, f, 2 * S).reshape(b * f, 1, 1, 2 * S)
        with torch.no_grad() if k0 > 0 else contextlib.nullcontext():  # input side
            # condition c(t) for the video pass and c(0) for the reference pass, one [B+1,D] batch
            c = self.t_embed.mlp(torch.cat([self.t_table[t], self.t_table[:1]]))
            cs = Fn.silu(c)
            z = self.x_embed.proj(x.flatten(0, 1)).flatten(2).transpose(1, 2).view(b, f, S, D) + self.pos
            if f > 1:
                z = z + self.frame[:f, None]
            g = self.pose_guider(pose.flatten(0, 1)).view(b, f, S, D)
            if drop_pose is not None:
                g = g * (~drop_pose.bool()).to(g.dtype)[:, None, None, None]
            z = z + g
            r = self.x_embed.proj(ref).flatten(2).transpose(1, 2) + self.pos if use_ref else None
        for i, blk in enumerate(self.blocks):
            with grad_ctx(i):
                mods = blk.ada(cs)  # [B+1, 9D]
                mv = mods[:b].view(b, 1, 1, 9 * D).chunk(9, dim=-1)
                bank = None
                if use_ref:
                    r, bank = blk.forward_ref(r, mods[b:].view(1, 1, 9 * D).chunk(9, dim=-1), i == self.L - 1)
                z = blk.forward_video(z, mv, bank, mask)
        shift, scale = self.final.ada(cs[:b]).view(b, 1, 1, 2 * D).chunk(2, dim=-1)
        out = self.final.linear(modulate(ln(z), shift, scale))  # [B,F,S,p*p*C]
        p, C = self.p, self.C  # unpatchify: per token (patch row, patch col, c), c fastest
        out = out.reshape(b, f, self.hp, self.wp, p, p, C).permute(0, 1, 6, 2, 4, 3, 5)
        return out.reshape(b, f, C, self.H, self.W)


@torch.no_grad()
def init_weights(model, perturb=1e-3):
    """docs/model.md init (Xavier-uniform with convs as [out, in*k*k], zero biases, t MLP N(0,0.02),
    zero ada / final / pose zero Linear) except attn_t.proj, Xavier (docs/model.md); then perturb."""
    zero = {"pose_guider.zero.weight", "final.ada.weight", "final.linear.weight"}
    for name, prm in model.named_parameters():
        if prm.dim() == 1 or name in zero or name.endswith(".ada.weight"):
            prm.zero_()
        elif name.startswith("t_embed.mlp."):
            prm.normal_(0.0, 0.02)
        else:
            fan_out = prm.shape[0]
            a = math.sqrt(6.0 / (fan_out + prm.numel() // fan_out))
            prm.uniform_(-a, a)
        if perturb:
            prm.add_(perturb * torch.randn_like(prm))


def q_sample(x0, t, eps):
    abar = torch.cumprod(1.0 - torch.linspace(1e-4, 0.02, T_STEPS, dtype=torch.float64), 0)[t.cpu()]
    a, s = abar.sqrt().to(x0), (1.0 - abar).sqrt().to(x0)
    return a.view(-1, 1, 1, 1, 1) * x0 + s.view(-1, 1, 1, 1, 1) * eps


# ----------------------------------------------------------------------------- --check
def rel_err(a, b):  # max |a - b| / max |b|  (None: no gradient, i.e. zero)
    if a is None or b is None:
        return 0.0 if a is None and b is None else 1.0
    return (a.detach().cpu().double() - b.detach().double()).abs().max().item() / max(
        b.detach().double().abs().max().item(), 1e-300)


def run_check(dev, dtype):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
    import epvdit as E  # the float64 reference (CPU)
    tiny = {k: v for k, v in DECK_DEFAULTS.items() if k != "B"}
    cases = [("image mode F=1, 16x12, B=3", dict(tiny, F=1, W=12), [True, False, False], [False, False, True]),
             ("tiny, no drops", tiny, None, None),
             ("tiny, mixed drops", tiny, [False, True], [True, False])]
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # true fp32
    print(f"check: torch {torch.__version__}, {'SDPA' if HAVE_SDPA else 'softmax fallback'}, {dtype}, {dev}")
    worst = 0.0
    for ci, (label, cfg, dr, dp) in enumerate(cases):
        gen = torch.Generator().manual_seed(100 + ci)
        ref = E.init_model_md(E.EPVDiT(**cfg).double(), gen)
        with torch.no_grad():  # perturb every tensor, so the zero-initialised ones are non-zero
            for prm in ref.parameters():
                sc = 0.1 if prm.dim() == 1 else 0.5 / math.sqrt(prm[0].numel())
                prm.add_(sc * torch.randn(prm.shape, generator=gen, dtype=torch.float64))
        mine = EPVDiT(**cfg).to(dtype)
        got = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
        assert got == E.expected_param_shapes(cfg), "state dict differs from docs/model.md's parameter names"
        mine.load_state_dict(ref.state_dict())  # the very same parameters
        mine.to(dev)
        B, shp = len(dr or [0, 0]), (cfg["F"], cfg["C"], cfg["H"], cfg["W"])
        x0, eps = (torch.randn((B,) + shp, generator=gen, dtype=torch.float64) for _ in range(2))
        t = torch.randint(0, T_STEPS, (B,), generator=gen)
        x, img = E.q_sample(x0, t, eps), torch.randn((B,) + shp[1:], generator=gen, dtype=torch.float64)
        pose = torch.rand(B, cfg["F"], cfg["Cp"], cfg["s"] * cfg["H"], cfg["s"] * cfg["W"], generator=gen,
                          dtype=torch.float64)
        drops = [None if d is None else torch.tensor(d) for d in (dr, dp)]
        out_r = ref(x, t, img, pose, *drops)
        loss_r = E.loss_fn(out_r, eps)
        loss_r.backward()
        args = [v if v is None else v.to(dev) for v in [x.to(dtype), t, img.to(dtype), pose.to(dtype)] + drops]
        out_m = mine(*args)
        loss_m = Fn.mse_loss(out_m, eps.to(dev, dtype))
        loss_m.backward()
        gref = {n: p.grad for n, p in ref.named_parameters()}
        e = (rel_err(out_m, out_r), rel_err(loss_m, loss_r),
             max(rel_err(p.grad, gref[n]) for n, p in mine.named_parameters()))
        print(f"  {label:28s} eps_hat {e[0]:.3e}  loss {e[1]:.3e}  grads {e[2]:.3e}")
        worst = max((worst,) + e)
    # last case again with block 0 and the input side frozen: same loss, same grads of what trains
    mine.zero_grad(set_to_none=True)
    for mod in (mine.t_embed, mine.x_embed, mine.pose_guider, mine.blocks[0]):
        mod.requires_grad_(False)
    mine.no_grad_prefix = 1
    loss_f = Fn.mse_loss(mine(*args), eps.to(dev, dtype))
    loss_f.backward()
    e_f = max([rel_err(loss_f, loss_r)] + [rel_err(p.grad, gref[n]) for n, p in mine.named_parameters()
                                           if p.requires_grad])
    frozen_ok = all(p.grad is None for p in mine.parameters() if not p.requires_grad)
    print(f"  {'tiny, --freeze-first 1':28s} loss+grads {e_f:.3e}  frozen grads None: {frozen_ok}")
    worst = max(worst, e_f, 0.0 if frozen_ok else 1.0)
    init_weights(mine, perturb=0)  # docs/model.md init (+ Xavier attn_t.proj): every block identity, output 0
    with torch.no_grad():
        z0 = mine(*args).abs().max().item()
    print(f"  {'init: max |eps_hat|':28s} {z0:.3e} (must be 0)")
    tol = 1e-5 if dtype == torch.float64 else 1e-3
    ok = worst <= tol and z0 == 0.0
    print(f"check_max_rel_err {worst:.3e} (tolerance {tol:g}) {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


# ----------------------------------------------------------------------------- timing
def read_deck(path):
    """[model] keys and train.batch of an entprog deck; inline `;` comments; missing keys: defaults."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";",), strict=False, interpolation=None)
    cp.optionxform = str  # keys are case-sensitive (F, C, H, ...)
    with open(path) as fh:
        cp.read_file(fh)
    shape = dict(DECK_DEFAULTS)
    for k in shape:
        sec, key = ("train", "batch") if k == "B" else ("model", k)
        if cp.has_option(sec, key):
            shape[k] = int(cp.get(sec, key))
    return shape


def make_adamw(params):
    kw = dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    if "fused" in inspect.signature(torch.optim.AdamW).parameters:
        try:
            return torch.optim.AdamW(params, fused=True, **kw), "AdamW(fused)"
        except (RuntimeError, ValueError, TypeError):  # e.g. fused not supported on this device
            pass
    return torch.optim.AdamW(params, **kw), "AdamW"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k in SMALL:
        ap.add_argument(f"--{k}", type=int, default=None, help=f"(small: {SMALL[k]})")
    ap.add_argument("--deck", help="entprog deck: shape from [model] and train.batch")
    ap.add_argument("--device", help="default: cuda if available (--check: cpu)")
    ap.add_argument("--dtype", choices=["fp32", "bf16", "fp64"], default=None,
                    help="timing: bf16 = autocast with fp32 weights (default on cuda), fp32 (default on cpu); "
                         "--check: fp64 (default) or fp32")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--freeze-first", type=int, default=0, metavar="K", help="freeze blocks 0..K-1")
    ap.add_argument("--train-inputs", action="store_true", help="with --freeze-first: input side still trains")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch >= 2)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the result as JSON to this file")
    ap.add_argument("--check", action="store_true", help="compare with tests/reference/epvdit.py and exit")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() and not a.check else "cpu"))
    if a.check:
        sys.exit(run_check(dev, torch.float32 if a.dtype == "fp32" else torch.float64))

    shape = read_deck(a.deck) if a.deck else dict(SMALL)
    shape.update({k: getattr(a, k) for k in SMALL if getattr(a, k) is not None})
    cfg = {k: v for k, v in shape.items() if k != "B"}
    dtype = a.dtype or ("bf16" if dev.type == "cuda" else "fp32")
    wdtype = torch.float64 if dtype == "fp64" else torch.float32  # master weights
    torch.manual_seed(a.seed)

    model = EPVDiT(**cfg).to(device=dev, dtype=wdtype)
    init_weights(model)
    K = max(0, min(a.freeze_first, cfg["L"]))
    if K > 0:
        for blk in model.blocks[:K]:
            blk.requires_grad_(False)
        if not a.train_inputs:
            for mod in (model.t_embed, model.x_embed, model.pose_guider):
                mod.requires_grad_(False)
            model.no_grad_prefix = K
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt, opt_name = make_adamw(trainable)
    fwd = model
    if a.compile:
        if not hasattr(torch, "compile"):
            sys.exit("--compile needs PyTorch >= 2.0")
        fwd = torch.compile(model)

    B, F_, C, H, W = shape["B"], cfg["F"], cfg["C"], cfg["H"], cfg["W"]
    x0, eps = (torch.randn(B, F_, C, H, W, device=dev, dtype=wdtype) for _ in range(2))
    t = torch.randint(0, T_STEPS, (B,), device=dev)
    x = q_sample(x0, t, eps)
    img = torch.randn(B, C, H, W, device=dev, dtype=wdtype)
    pose = torch.rand(B, F_, cfg["Cp"], cfg["s"] * H, cfg["s"] * W, device=dev, dtype=wdtype)
    amp = (torch.autocast(device_type=dev.type, dtype=torch.bfloat16) if dtype == "bf16"
           else contextlib.nullcontext())

    def step():
        opt.zero_grad(set_to_none=True)
        with amp:
            out = fwd(x, t, img, pose)
        loss = Fn.mse_loss(out.to(wdtype), eps)
        loss.backward()
        opt.step()
        return loss

    cuda = dev.type == "cuda"
    marks = []  # per timed step: a pair of CUDA events, or milliseconds on the CPU
    for i in range(a.warmup + a.steps):
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)] if cuda else None
        if ev:
            ev[0].record()
        t0 = time.perf_counter()
        loss = step()
        if ev:
            ev[1].record()
        if i >= a.warmup:
            marks.append(ev or (time.perf_counter() - t0) * 1e3)
    if cuda:
        torch.cuda.synchronize()
    times = [m[0].elapsed_time(m[1]) if cuda else m for m in marks]
    med = statistics.median(times)
    if cuda:
        peak, peak_kind = torch.cuda.max_memory_allocated(dev) / 2 ** 20, "torch.cuda.max_memory_allocated"
        gpu_name = torch.cuda.get_device_name(dev)
    else:
        peak, peak_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
        gpu_name = None
    last = loss.item()
    nparam, ntrain = sum(p.numel() for p in model.parameters()), sum(p.numel() for p in trainable)
    print(f"shape {shape} device {dev} ({gpu_name or 'cpu'}) dtype {dtype} {opt_name}"
          f"{' compiled' if a.compile else ''} freeze_first {K}{' train_inputs' if a.train_inputs else ''}")
    print(f"params {nparam / 1e6:.2f} M (trainable {ntrain / 1e6:.2f} M), last loss {last:.5f}, "
          f"peak {peak:.1f} MiB ({peak_kind}), steps {len(times)} ms {['%.2f' % v for v in times]}")
    if a.json:
        res = dict(ms_per_step=med, peak_mib=peak, shape=shape, device=str(dev), gpu_name=gpu_name,
                   torch_version=torch.__version__, dtype=dtype,
                   command=" ".join(shlex.quote(v) for v in ["python3"] + sys.argv),
                   peak_kind=peak_kind, times_ms=times, warmup=a.warmup, optimizer=opt_name, compile=a.compile,
                   freeze_first=K, train_inputs=a.train_inputs, sdpa=HAVE_SDPA, params=nparam,
                   trainable_params=ntrain, last_loss=last)
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)
    print(f"torch_step_ms {med:.3f}")


if __name__ == "__main__":
    main()
