#!/usr/bin/env python3
"""metrics.csv's columns have one definition, the COLUMNS table of
src/train/metrics.c. Checks that docs/formats.md lists exactly those
columns in that order, with the same meanings; that the plot tools read no
column outside it; and, given the entprog program, that a real run's
header is the table. Usage: check_metrics_columns.py ROOT [ENTPROG]"""
import os, re, subprocess, sys, tempfile

root = os.path.abspath(sys.argv[1])
src = open(os.path.join(root, "src/train/metrics.c")).read()
table = re.findall(r'\[MC_\w+\] = \{"(\w+)", "[^"]*", "([^"]*)"\}', src)
hdr = open(os.path.join(root, "src/train/metrics.h")).read()
enum = re.findall(r"\bMC_(\w+)", hdr[hdr.index("typedef enum"):hdr.index("} MetricsColumn")])
names = ["kind"] + [n for n, _ in table]
bad = []
if [n.upper() for n, _ in table] != [e for e in enum if e != "COUNT"][:len(table)] or len(table) != len(enum) - 1:
    bad.append(f"metrics.c's table {[n for n, _ in table]} does not follow metrics.h's enum {enum}")

doc = open(os.path.join(root, "docs/formats.md")).read()
m = re.search(r"<!-- metrics columns: begin -->(.*?)<!-- metrics columns: end -->", doc, re.S)
rows = re.findall(r"^\| `(\w+)` \| (.*?) \|$", m.group(1), re.M) if m else []
if [r[0] for r in rows] != names:
    bad.append(f"docs/formats.md lists {[r[0] for r in rows]}, the table {names}")
for (n, meaning), (dn, dmeaning) in zip(table, rows[1:]):
    if n == dn and meaning != dmeaning:
        bad.append(f"docs/formats.md: {n}: '{dmeaning}' but metrics.c says '{meaning}'")

for tool in ("tools/plot_metrics.py", "tools/plot_report.py"):
    text = open(os.path.join(root, tool)).read()
    if "def load_metrics" in text:  # plot_report.py reads other CSV files too: only its metrics reader
        text = text[text.index("def load_metrics"):]
        text = text[:text.index("\ndef ", 1)]
    for col in re.findall(r'row\["(\w+)"\]|num\(row, "(\w+)"', text):
        col = col[0] or col[1]
        if col not in names:
            bad.append(f"{tool} reads column '{col}', which metrics.csv does not have")

if len(sys.argv) > 2:  # a real run's header
    with tempfile.TemporaryDirectory() as t:
        deck = os.path.join(root, "inputs/tiny.ini")
        run = lambda *a: subprocess.run([sys.argv[2], *a], cwd=t, check=True, capture_output=True)
        run("datagen", deck)
        run("train", deck, "--set", "train.steps=2", "--set", "train.val_every=2")
        header = open(os.path.join(t, "run/metrics.csv")).readline().strip().split(",")
        if header != names:
            bad.append(f"a run's metrics.csv header {header} is not the table {names}")

for b in bad:
    print("check_metrics_columns:", b)
if bad:
    sys.exit(1)
print(f"check_metrics_columns: ok, {len(names)} columns, one definition (src/train/metrics.c)")
