"""Shared by the end-to-end test scripts: run entprog in the work folder and
count the checks that fail."""
import os
import subprocess
import sys


class Harness:
    def __init__(self, entprog, work):
        self.entprog, self.work, self.failures = entprog, work, []

    def run(self, *args, ok=True, env=None):
        """entprog ARGS in the work folder (env: extra environment); stops the test when ok and it fails."""
        p = subprocess.run([self.entprog, *args], cwd=self.work, capture_output=True, text=True,
                           env={**os.environ, **(env or {})})
        if ok and p.returncode != 0:
            sys.exit(f"FAILED: entprog {' '.join(args)}\n{p.stdout}\n{p.stderr}")
        return p

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            self.failures.append(what)

    def finish(self, what):
        if self.failures:
            sys.exit(f"{len(self.failures)} check(s) failed: {self.failures}")
        print(f"all {what} checks passed")
