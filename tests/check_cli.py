#!/usr/bin/python3
"""Checks of entprog's command line (src/cli/): the command table's help and
unknown-command error, and every argument mistake the helper (args.c) catches,
each with its exit code and a message naming the command and the option.
Also predict --backend cpu gives the default's eps_hat bit for bit.
Usage: check_cli.py ENTPROG FIXTURES WORKDIR"""
import os
import sys

import h5py
import numpy as np
from e2e import Harness

ENTPROG, FIXTURES, WORK = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
os.makedirs(WORK, exist_ok=True)
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check
COMMANDS = ["datagen", "train", "predict", "grad", "cei", "sample", "eval", "export", "import-dit", "import-video", "encode",
            "decode"]


def expect(args, rc, needles, what, stream="stderr"):
    p = run(*args, ok=False)
    text = getattr(p, stream)
    missing = [n for n in needles if n not in text]
    last = text.strip().splitlines()[-1] if text.strip() else ""
    check(p.returncode == rc and not missing, f"{what}: exit {p.returncode} (want {rc}), missing {missing}, '{last}'")


# the command table: help, no command, unknown command
expect([], 2, ["usage: entprog <command>", *COMMANDS], "no command: the list on stderr")
expect(["--help"], 0, ["usage: entprog <command>", *COMMANDS, "train EP-VDiT as the deck says"],
       "--help: the list on stdout", "stdout")
expect(["bogus"], 2, ["unknown command 'bogus'", "one of: " + " ".join(COMMANDS)], "unknown command")
for c in COMMANDS:
    expect([c, "--help"], 0, [f"usage: entprog {c} "], f"{c} --help", "stdout")
expect(["predict", "-h"], 0, ["--backend", "cpu (default) or cuda"], "predict -h lists its options", "stdout")

# argument mistakes: exit 1, command and option named, the usage line given
D = "deck.ini"
cases = [
    (["train"], ["train: no input deck given", "usage: entprog train <deck>"]),
    (["train", D, "--bogus"], ["train: unknown option '--bogus'", "usage: entprog train"]),
    (["train", D, "--resume"], ["train: --resume needs a value"]),
    (["train", D, "--set"], ["train: --set needs a value"]),
    (["train", D, "other.ini"], ["train: unexpected argument 'other.ini' (one deck only"]),
    (["datagen"], ["datagen: no input deck given", "usage: entprog datagen <deck>"]),
    (["datagen", D, "--x"], ["datagen: unknown option '--x'"]),
    (["sample", D], ["sample: --ckpt is required: the checkpoint to sample from"]),
    (["sample", "--ckpt", "c.h5"], ["sample: no input deck given"]),
    (["sample", D, "--ckpt", "c.h5", "--steps", "x"], ["sample: --steps 'x' is not a whole number in [1, 1000]"]),
    (["sample", D, "--ckpt", "c.h5", "--steps", "1001"], ["sample: --steps '1001' is not a whole number in [1, 1000]"]),
    (["sample", D, "--ckpt", "c.h5", "--steps", "5x"], ["sample: --steps '5x'"]),
    (["sample", D, "--ckpt", "c.h5", "--n", "0"], ["sample: --n '0' is not a whole number >= 1"]),
    (["sample", D, "--ckpt", "c.h5", "--seed", "-1"], ["sample: --seed '-1' is not a whole number >= 0"]),
    (["sample", D, "--ckpt", "c.h5", "--seed", "9223372036854775808"], ["sample: --seed '9223372036854775808'"]),
    (["sample", D, "--ckpt", "c.h5", "--eta", "abc"], ["sample: --eta 'abc' is not a finite number"]),
    (["sample", D, "--ckpt", "c.h5", "--guidance", "inf"], ["sample: --guidance 'inf' is not a finite number"]),
    (["sample", D, "--ckpt", "c.h5", "--eta", "-1"], ["sample: --eta -1 must be a finite number >= 0"]),
    (["sample", D, "--ckpt", "c.h5", "--ema", "x"], ["sample: unexpected argument 'x' (one deck only"]),
    (["sample", D, "--ckpt"], ["sample: --ckpt needs a value"]),
    (["cei", D], ["cei: --ckpt is required"]),
    (["cei", D, "--ckpt", "c.h5", "--n", "8x"], ["cei: --n '8x' is not a whole number >= 1"]),
    (["cei", D, "--ckpt", "missing.h5"], ["cei: --ckpt 'missing.h5'"]),
    (["predict", "--weights", "w.h5", "--out", "o.h5"], ["predict: --inputs is required"]),
    (["predict", D], ["predict: unexpected argument 'deck.ini' (it takes no deck"]),
    (["grad", "--weights", "w.h5", "--inputs", "i.h5", "--out", "o.h5", "--backend", "tpu"],
     ["grad: --backend 'tpu' is not cpu or cuda"]),
    (["grad", "--weights", "w.h5", "--inputs", "i.h5", "--out", "o.h5", "--backend"], ["grad: --backend needs a value"]),
    (["eval"], ["eval: --samples is required", "usage: entprog eval --samples"]),
    (["eval", "--samples"], ["eval: --samples needs a value"]),
    (["eval", "--samples", "s.h5", "--bogus", "1"], ["eval: unknown option '--bogus'"]),
]
for args, needles in cases:
    expect(args, 1, needles, "entprog " + " ".join(args))

# predict --backend cpu is the default, bit for bit; --weights names a missing file
weights, inputs = os.path.join(FIXTURES, "tiny_weights.h5"), os.path.join(FIXTURES, "video_in.h5")
run("predict", "--weights", weights, "--inputs", inputs, "--out", "p_default.h5")
run("predict", "--weights", weights, "--inputs", inputs, "--out", "p_cpu.h5", "--backend", "cpu")
with h5py.File(os.path.join(WORK, "p_default.h5")) as a, h5py.File(os.path.join(WORK, "p_cpu.h5")) as b:
    check(np.array_equal(a["eps_hat"][:], b["eps_hat"][:]), "predict --backend cpu = predict, bit for bit")
p = run("predict", "--weights", weights, "--inputs", inputs, "--out", "p_cuda.h5", "--backend", "cuda", ok=False)
check(p.returncode == 0 or "backend cuda" in p.stderr,
      f"predict --backend cuda runs, or says why not: exit {p.returncode}, {p.stderr.strip()[-200:]}")
H.finish("command-line")
