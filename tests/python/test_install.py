# SPDX-License-Identifier: Apache-2.0
"""`cmake --install` puts an importable package under the prefix: the path
it prints is where `import cachemeter` works, and the extension finds the
installed libcachemeter.so.N through its $ORIGIN-relative RPATH (with no
LD_LIBRARY_PATH, and no build tree on the library path).

CM_BUILD_DIR names the build directory (CTest sets it)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


def test_install_prefix_is_importable(tmp_path):
    build = os.environ.get("CM_BUILD_DIR")
    if not build:
        pytest.skip("CM_BUILD_DIR is not set (CTest sets it)")
    prefix = tmp_path / "prefix"
    r = subprocess.run(["cmake", "--install", build, "--prefix", str(prefix)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"cachemeter Python package: (\S+) \(put it on PYTHONPATH\)", r.stdout)
    assert m, r.stdout
    site = m.group(1)
    assert site.startswith(str(prefix)) and os.path.isdir(os.path.join(site, "cachemeter"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = site
    code = ("import cachemeter, os; "
            "c = cachemeter.Cache('memory://', 'installed'); c.set('k', b'v'); assert c.get('k') == b'v'; "
            "maps = open('/proc/self/maps').read(); "
            "print(cachemeter.__file__); "
            "print([l.split()[-1] for l in maps.splitlines() if 'libcachemeter.so' in l][0])")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    module_file, loaded_lib = r.stdout.split()
    assert module_file.startswith(site)
    assert os.path.realpath(loaded_lib).startswith(os.path.realpath(str(prefix)))  # the installed library
