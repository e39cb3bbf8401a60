#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Size limits of agent/: no .c file over 600 lines, no function over 80 lines.

A function is counted from the line that opens its body ("{" in column 0, the Linux brace
style .clang-format enforces) to the line that closes it ("}" in column 0), both included.
Exceptions are justified in README.md, in the list under "### Size exceptions": a line
"- `agent/PATH.c`: reason" lets that file be longer, "- `agent/PATH.c:function()`: reason"
lets that function be longer. An exception that no longer applies is an error too, so the
list stays true. Prints each broken limit and exits 1; exits 0 quietly when all is well.
"""
import os
import re
import sys

FILE_MAX = 600
FUNC_MAX = 80
EXCEPTION = re.compile(r"^- `(agent/[^`:]+\.c)(?::([A-Za-z_][A-Za-z0-9_]*)\(\))?`")
NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def exceptions(readme):
    files, funcs = set(), set()
    inside = False
    with open(readme, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                inside = line.strip() == "### Size exceptions"
                continue
            m = EXCEPTION.match(line) if inside else None
            if m and m.group(2):
                funcs.add((m.group(1), m.group(2)))
            elif m:
                files.add(m.group(1))
    return files, funcs


def functions(lines):
    """Yields (name, first line number, length) of each function body."""
    start = None
    for i, line in enumerate(lines):
        if line.startswith("{"):
            start = i
        elif line.startswith("}") and start is not None:
            top = start
            while top > 0 and lines[top - 1].strip() and not lines[top - 1].lstrip().startswith(
                    ("}", "*", "/*", "//", "#")):
                top -= 1
            names = NAME.findall(" ".join(l.strip() for l in lines[top:start]))
            yield (names[0] if names else "?"), start, i - start + 1
            start = None


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    ok_files, ok_funcs = exceptions(os.path.join(top, "README.md"))
    errors, used = [], set()
    for folder, _, names in sorted(os.walk(os.path.join(top, "agent"))):
        for name in sorted(names):
            if not name.endswith(".c"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), top)
            with open(os.path.join(top, rel), encoding="utf-8") as f:
                lines = f.read().split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            if len(lines) > FILE_MAX:
                if rel in ok_files:
                    used.add(rel)
                else:
                    errors.append("%s: %d lines (limit %d)" % (rel, len(lines), FILE_MAX))
            for fn, at, length in functions(lines):
                if length <= FUNC_MAX:
                    continue
                if (rel, fn) in ok_funcs:
                    used.add((rel, fn))
                else:
                    errors.append("%s:%d: %s() is %d lines (limit %d)" % (rel, at + 1, fn, length, FUNC_MAX))
    for stale in sorted(ok_files - used, key=str):
        errors.append("README.md: size exception for %s no longer needed" % stale)
    for stale in sorted(ok_funcs - used, key=str):
        errors.append("README.md: size exception for %s:%s() no longer needed" % stale)
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
