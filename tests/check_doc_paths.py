#!/usr/bin/env python3
"""Every file a page of the docs names must exist: in README.md and
docs/*.md, each path that starts with src/, cuda/, mpi/, docs/, tests/,
tools/, benchmarks/, jobs/, inputs/ or scripts/ (relative to the repository
root; a `*` is a glob that must match something), and each relative Markdown
link target [text](target) (relative to the page). Exits 1 naming every
missing one as page:line: path.
  check_doc_paths.py [ROOT]      check the tree at ROOT (default: this checkout)
  check_doc_paths.py --self-test check that a planted bad path is reported"""
import glob, os, re, sys

TOPS = "src|cuda|mpi|docs|tests|tools|benchmarks|jobs|inputs|scripts"
# a path: one of TOPS, a slash, then path characters; not part of a longer
# path (build/src/..., /work/shared/docs/...) or of a word (mysrc/).
PATH = re.compile(r"(?<![\w./$~-])(?:%s)/[\w.*/-]*[\w*]" % TOPS)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def pages(root):
    return [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))


def exists(base, path):
    full = os.path.join(base, path)
    return glob.glob(full) if "*" in path else os.path.exists(full)


def check(root):
    missing = []
    for page in pages(root):
        rel = os.path.relpath(page, root)
        for n, line in enumerate(open(page, encoding="utf-8"), 1):
            for p in PATH.findall(line):
                if not exists(root, p.rstrip(".")):
                    missing.append(f"{rel}:{n}: {p}")
            for t in LINK.findall(line):
                if re.match(r"[a-z]+:", t) or t.startswith("#"):
                    continue  # a URL or an anchor in the same page
                t = t.split("#")[0]
                if t and not os.path.exists(os.path.join(os.path.dirname(page), t)):
                    missing.append(f"{rel}:{n}: link ({t})")
    return missing


def self_test():
    """A tree with one good and two bad paths: both bad ones, and only they, are reported."""
    import subprocess, tempfile
    with tempfile.TemporaryDirectory() as t:
        os.makedirs(os.path.join(t, "docs"))
        os.makedirs(os.path.join(t, "src", "core"))
        open(os.path.join(t, "src", "core", "die.c"), "w").close()
        open(os.path.join(t, "README.md"), "w").write(
            "See src/core/die.c and [the page](docs/a.md).\nThe old src/die.c.\n")
        open(os.path.join(t, "docs", "a.md"), "w").write("Back to [README](../README.md); [gone](b.md)\n")
        r = subprocess.run([sys.executable, __file__, t], capture_output=True, text=True)
        want = ["README.md:2: src/die.c", "docs/a.md:1: link (b.md)"]
        got = [l for l in r.stdout.splitlines() if l.startswith("check_doc_paths: ") and ": " in l[17:]]
        if r.returncode != 1 or [g[len("check_doc_paths: "):] for g in got] != want:
            sys.exit("check_doc_paths: self-test: expected exit 1 naming exactly %s, got %d:\n%s" % (want, r.returncode, r.stdout))
    print("check_doc_paths: self-test ok (planted missing paths are reported, existing ones are not)")


if sys.argv[1:] == ["--self-test"]:
    self_test()
    sys.exit(0)
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
missing = check(root)
for m in missing:
    print("check_doc_paths:", m)
if missing:
    print(f"check_doc_paths: {len(missing)} path(s) named in README.md or docs/*.md do not exist")
    sys.exit(1)
print(f"check_doc_paths: ok, every path and link in {len(pages(root))} pages exists")
