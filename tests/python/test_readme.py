# SPDX-License-Identifier: Apache-2.0
"""The README's Python part runs as written (issue 17, item 5): every
```python block of its "## Python" section, in order, in one fresh
interpreter, in a scratch directory, with REDIS_URL naming a real
redis-server; a failing assert or exception in any block fails this test."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import BOUND

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def python_blocks() -> list:
    with open(README, encoding="utf-8") as f:
        text = f.read()
    start = text.index("\n## Python\n")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"^```python\n(.*?)^```$", text[start:end], flags=re.S | re.M)
    return blocks


def test_every_python_snippet_of_the_readme_runs(tmp_path, redis_socket):
    blocks = python_blocks()
    assert len(blocks) >= 3, "the README's Python section lost its snippets"
    script = "\n".join(blocks)
    env = dict(os.environ, REDIS_URL=f"redis+unix://{redis_socket}?namespace=readme")
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=BOUND * 6)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "/metrics" in r.stdout
