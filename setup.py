# SPDX-License-Identifier: Apache-2.0
"""setup.py: the native half of `pip install .` (pyproject.toml has the rest).

build_ext configures and builds the project with CMake (Release, the Python
binding on, tests, benchmarks, examples, the program and Java off, and
CM_PYTHON_WHEEL=ON: the extension's RPATH is $ORIGIN), then puts the
package CMake assembled (the .py files, the generated _errors.py and
_core.pyi, the extension) and libcachemeter.so.N into the wheel's
cachemeter/ directory. The version is the one in include/cachemeter/common.h.

Knobs (environment): CM_WHEEL_BUILD_DIR reuses a CMake build directory across
builds (default: setuptools' build_temp); CM_WHEEL_CMAKE_ARGS adds CMake
arguments ("-DCM_WITH_REDIS=OFF"); CM_JOBS the parallel jobs.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def version() -> str:
    with open(os.path.join(ROOT, "include", "cachemeter", "common.h")) as f:
        text = f.read()
    parts = [re.search(rf"#define CM_VERSION_{p} (\d+)", text).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


class CMakeBuild(build_ext):
    def run(self) -> None:
        build_dir = os.environ.get("CM_WHEEL_BUILD_DIR") or os.path.join(os.path.abspath(self.build_temp), "cmake")
        os.makedirs(build_dir, exist_ok=True)
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        cmake_args = [
            "cmake", "-S", ROOT, "-B", build_dir, *generator,
            "-DCMAKE_BUILD_TYPE=Release",
            "-DCM_WITH_PYTHON=ON", "-DCM_PYTHON_WHEEL=ON", f"-DPython3_EXECUTABLE={sys.executable}",
            "-DBUILD_TESTING=OFF", "-DCM_BUILD_BENCH=OFF", "-DCM_BUILD_EXAMPLES=OFF", "-DCM_BUILD_APPS=OFF",
            "-DCM_WITH_JAVA=OFF",
            *shlex.split(os.environ.get("CM_WHEEL_CMAKE_ARGS", "")),
        ]
        subprocess.run(cmake_args, check=True)
        jobs = os.environ.get("CM_JOBS") or str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", build_dir, "--target", "cachemeter_python", "--parallel", jobs],
                       check=True)

        pkg_build = os.path.join(build_dir, "bindings", "python", "cachemeter")
        ext_path = self.get_ext_fullpath("cachemeter._core")
        dest = os.path.dirname(ext_path)
        os.makedirs(dest, exist_ok=True)
        for f in os.listdir(pkg_build):
            src = os.path.join(pkg_build, f)
            if os.path.isfile(src):
                shutil.copy2(src, os.path.join(dest, f))
        # The extension was built under its SOABI name; setuptools expects
        # get_ext_fullpath's (the same on CPython, checked here).
        built = glob.glob(os.path.join(dest, "_core.*.so"))
        if not built:
            raise RuntimeError(f"no _core extension in {pkg_build}")
        if os.path.abspath(built[0]) != os.path.abspath(ext_path):
            shutil.move(built[0], ext_path)
        # libcachemeter.so.N under its SONAME, a file (not a link): the
        # extension finds it through RPATH $ORIGIN.
        libs = [p for p in glob.glob(os.path.join(build_dir, "src", "libcachemeter.so.*"))
                if re.fullmatch(r"libcachemeter\.so\.\d+", os.path.basename(p))]
        if len(libs) != 1:
            raise RuntimeError(f"expected one libcachemeter.so.N in {build_dir}/src, found {libs}")
        shutil.copy2(os.path.realpath(libs[0]), os.path.join(dest, os.path.basename(libs[0])))


os.makedirs(os.path.join(ROOT, "build-wheel"), exist_ok=True)  # setup.cfg's egg_base
setup(
    version=version(),
    ext_modules=[Extension("cachemeter._core", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
)
