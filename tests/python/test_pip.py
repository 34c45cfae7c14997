# SPDX-License-Identifier: Apache-2.0
"""`pip install .` as a Python user runs it (issue 17, item 1), offline:

a throwaway venv made with --system-site-packages (Debian's setuptools and
wheel), `pip install --no-build-isolation <checkout>`, then from `/` with no
PYTHONPATH or LD_LIBRARY_PATH: import, use a cache, render; the wheel from
`python -m build --wheel --no-isolation` carries libcachemeter.so.N beside
the extension (RUNPATH $ORIGIN), py.typed and the generated modules; then
`pip uninstall` removes it. The CMake build directory is shared by both
builds (CM_WHEEL_BUILD_DIR), so the second is incremental.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD_TIMEOUT = 900


def clean_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONHOME", "VIRTUAL_ENV")}
    env["CM_WHEEL_BUILD_DIR"] = str(tmp_path / "cmake")
    env["PIP_NO_INDEX"] = "1"  # offline: never reach for PyPI
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(argv, env, cwd="/", timeout=120):
    r = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{argv}: {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_pip_install_in_a_venv_then_build_a_wheel_then_uninstall(tmp_path):
    venv = tmp_path / "venv"
    run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], os.environ)
    py = str(venv / "bin" / "python")
    env = clean_env(tmp_path)
    run([py, "-m", "pip", "install", "--no-build-isolation", ROOT], env, timeout=BUILD_TIMEOUT)

    out = run([py, "-c", """
import cachemeter, os, sys
assert cachemeter.__file__.startswith(sys.prefix), cachemeter.__file__
print(cachemeter.__version__)
reg = cachemeter.Registry()
with cachemeter.Cache("memory://", "users", registry=reg) as c:
    c.set("alice", b"admin")
    assert c.get("alice") == b"admin"
    assert c.get("bob") is None
    text = reg.render()  # while open: a closed cache's series leave the registry
assert 'cachemeter_cache_hits_total{cache="users",backend="memory"} 1' in text, text
print("ok")
"""], env)
    version = out.split()[0]
    with open(os.path.join(ROOT, "include", "cachemeter", "common.h")) as f:
        header = f.read()
    want = ".".join(header.split(f"#define CM_VERSION_{p} ")[1].split()[0] for p in ("MAJOR", "MINOR", "PATCH"))
    assert version == want
    assert out.split()[-1] == "ok"

    # python -m build --wheel: the wheel's contents.
    dist = tmp_path / "dist"
    run([py, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), ROOT], env, cwd=ROOT,
        timeout=BUILD_TIMEOUT)
    wheels = list(dist.glob("cachemeter-*.whl"))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    for needed in ("cachemeter/__init__.py", "cachemeter/_errors.py", "cachemeter/_core.pyi", "cachemeter/py.typed",
                   "cachemeter/libcachemeter.so.0", "cachemeter/prometheus_client.py"):
        assert needed in names, (needed, names)
    assert any(n.startswith("cachemeter/_core.") and n.endswith(".so") for n in names), names

    run([py, "-m", "pip", "uninstall", "-y", "cachemeter"], env)
    r = subprocess.run([py, "-c", "import cachemeter"], env=env, cwd="/", capture_output=True, text=True)
    # --system-site-packages: only a build tree on PYTHONPATH could still provide it, and env has none.
    assert r.returncode != 0 and "No module named 'cachemeter'" in r.stderr, r.stderr
