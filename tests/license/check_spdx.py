#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Every source file of the project carries an SPDX licence header.

    check_spdx.py SOURCE_DIR           fails listing the files without one
    check_spdx.py SOURCE_DIR --fix     adds it where it is missing

Source files: C, C++, Java, JavaScript, Python, shell, SWIG, CMake, TOML and
setup.cfg, and the templates (*.in) of those; the header is the first line
(after a #! line), in the file's comment syntax. Documentation, data, test
corpora and generated files are not source files. build*/ trees are skipped.
"""
import os
import sys

TAG = "SPDX-License-Identifier: Apache-2.0"
SKIP_DIRS = {".git", "__pycache__", "node_modules"}


def comment_for(name: str):
    base = name[:-3] if name.endswith(".in") else name
    if base.endswith((".c", ".h", ".i", ".map")):
        return f"/* {TAG} */"
    if base.endswith((".cpp", ".hpp", ".java", ".js")):
        return f"// {TAG}"
    if base.endswith((".py", ".pyi", ".sh", ".cmake", ".toml", ".cfg", ".pc")) or base == "CMakeLists.txt":
        return f"# {TAG}"
    return None


def sources(root: str):
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and not (rel == "." and x.startswith("build")))
        if "/corpus" in "/" + rel or "/regressions" in "/" + rel:
            continue
        for f in sorted(files):
            c = comment_for(f)
            if c is not None:
                yield os.path.join(d, f), c


def has_tag(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        head = [f.readline() for _ in range(3)]
    return any(TAG in line for line in head)


def fix(path: str, comment: str) -> None:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.startswith("#!"):
        first, _, rest = text.partition("\n")
        text = f"{first}\n{comment}\n{rest}"
    else:
        text = f"{comment}\n{text}"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main() -> int:
    root = sys.argv[1]
    missing = [(p, c) for p, c in sources(root) if not has_tag(p)]
    if "--fix" in sys.argv[2:]:
        for p, c in missing:
            fix(p, c)
        print(f"added the SPDX header to {len(missing)} files")
        return 0
    for p, _ in missing:
        print(f"no SPDX header: {os.path.relpath(p, root)}")
    n = sum(1 for _ in sources(root))
    print(f"{n - len(missing)} of {n} source files carry '{TAG}'")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
