#!/usr/bin/env python3
"""The folders of src/ (plus mpi/ and cuda/) form layers: no include cycle
between folders. Every project include names its folder ("core/die.h"), so
the folder graph is read straight from the #include lines. cuda/ is the GPU
half of ops (ops/ops.c dispatches to cuda/ops_cuda.h, the kernels implement
ops/ops.h), so the two count as one node. Exits 1 naming a cycle, or an
include that does not name an existing folder/file."""
import os, re, sys

def self_test():
    """The check must fail on a tree with a cycle: a tiny one in a temp folder."""
    import subprocess, tempfile
    with tempfile.TemporaryDirectory() as t:
        for d, f, inc in [("src/a", "x.h", "b/y.h"), ("src/b", "y.h", "a/x.h"), ("mpi", "m.h", "a/x.h"), ("cuda", "k.cu", "a/x.h")]:
            os.makedirs(os.path.join(t, d), exist_ok=True)
            open(os.path.join(t, d, f), "w").write(f'#include "{inc}"\n')
        r = subprocess.run([sys.executable, __file__, t], capture_output=True, text=True)
        if r.returncode != 1 or "include cycle" not in r.stdout:
            sys.exit("check_layers: self-test: a cycle a -> b -> a was not reported:\n" + r.stdout)
        print("check_layers: self-test ok (a planted cycle is reported)")

if sys.argv[1:] == ["--self-test"]:
    self_test()
    sys.exit(0)
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
UNIT = {"cuda": "ops"}  # folders that are one node of the graph
folders = sorted(d for d in os.listdir(os.path.join(root, "src")) if os.path.isdir(os.path.join(root, "src", d)))
trees = {f: os.path.join(root, "src", f) for f in folders}
trees["mpi"] = os.path.join(root, "mpi")
trees["cuda"] = os.path.join(root, "cuda")

edges, bad = {}, []
for folder, path in trees.items():
    for name in sorted(os.listdir(path)):
        if not re.search(r"\.(c|h|cu|cuh)$", name):
            continue
        text = open(os.path.join(path, name), encoding="utf-8").read()
        for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
            if "/" not in inc:
                if os.path.exists(os.path.join(path, inc)) and inc.endswith(".cuh"):
                    continue  # a private header beside the file (cuda/*.cuh)
                bad.append(f"{folder}/{name}: #include \"{inc}\" does not name its folder")
                continue
            dst = inc.split("/")[0]
            if dst not in trees or not os.path.exists(os.path.join(trees[dst], inc.split("/", 1)[1])):
                bad.append(f"{folder}/{name}: #include \"{inc}\" is not a project header")
                continue
            a, b = UNIT.get(folder, folder), UNIT.get(dst, dst)
            if a != b:
                edges.setdefault(a, {}).setdefault(b, f"{folder}/{name} -> {inc}")

# depth-first search for a cycle
state, stack, cycle = {}, [], None
def visit(u):
    global cycle
    state[u] = 1
    stack.append(u)
    for v in sorted(edges.get(u, {})):
        if cycle:
            return
        if state.get(v) == 1:
            cycle = stack[stack.index(v):] + [v]
            return
        if not state.get(v):
            visit(v)
    stack.pop()
    state[u] = 2
for u in sorted(set(UNIT.get(f, f) for f in trees)):
    if not state.get(u) and not cycle:
        visit(u)

for b in bad:
    print("check_layers:", b)
if cycle:
    print("check_layers: include cycle between folders: " + " -> ".join(cycle))
    for a, b in zip(cycle, cycle[1:]):
        print(f"  {a} -> {b}: e.g. {edges[a][b]}")
if bad or cycle:
    sys.exit(1)
# the layers, lowest first: each folder only includes folders before it
order, seen = [], set()
def place(u):
    if u in seen:
        return
    seen.add(u)
    for v in sorted(edges.get(u, {})):
        place(v)
    order.append(u)
for u in sorted(set(UNIT.get(f, f) for f in trees)):
    place(u)
print("check_layers: ok, no include cycle; layers lowest first: " + " < ".join(order))
