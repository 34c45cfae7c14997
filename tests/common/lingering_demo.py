# SPDX-License-Identifier: Apache-2.0
"""tests/common/lingering_demo.py: `cachemeter demo ... --listen 127.0.0.1:0`
run as a context manager for the tests that read a demo's endpoint
(tests/dashboards, tests/cli/test_demo_exporters.py).

    with LingeringDemo(cli, "--seconds", "2") as demo:   # demo.port, demo.base
        ...

wait_for_end=True (default, with --linger) returns once the run is over
and its numbers stay as they are; otherwise as soon as it serves. Leaving
the block closes the demo's stdin (its --linger ends) and waits for it."""
import re
import subprocess

BOUND_S = 120


class LingeringDemo:
    def __init__(self, cli, *args, wait_for_end=True):
        self.argv = [cli, "demo", "--quiet", "--listen", "127.0.0.1:0", *args]
        if "--linger" not in args:
            self.argv.append("--linger")
        self.wait_for_end = wait_for_end
        self.port = None
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        for line in self.proc.stdout:
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line)
            if m:
                self.port = int(m.group(1))
                if not self.wait_for_end:
                    break
            if line.startswith("lingering"):
                break
        if self.port is None:
            err = self.proc.stderr.read()
            self.close()
            raise AssertionError("the demo did not say where it serves: " + err)
        self.base = f"http://127.0.0.1:{self.port}"
        return self

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(BOUND_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __exit__(self, *exc):
        self.close()
