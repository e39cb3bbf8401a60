#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The layering rule of agent/, read from the #include lines.

agent/ is cut into folders by layer; a file may include headers of its own folder or of a layer
below it, never one above it nor one beside it, and a header named *_internal.h only from its own
folder. There may be no include cycle between modules (a .c file and its header count as one). Prints each broken rule as FILE:LINE and
exits 1; prints the layers and exits 0 when all is well.
"""
import os
import re
import sys

# Higher calls lower. Folders of the same rank do not include each other.
RANK = {
    "util": 0,
    "aws": 1,
    "host": 1,
    "core": 2,
    "distribute": 3,
    "run": 4,
    "daemon": 4,
    "cli": 5,
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    agent = os.path.join(top, "agent")
    errors = []
    graph = {}
    for folder in sorted(os.listdir(agent)):
        path = os.path.join(agent, folder)
        if not os.path.isdir(path):
            continue
        if folder not in RANK:
            errors.append("agent/%s/: a folder the layering check does not know; give it a rank" % folder)
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith((".c", ".h")):
                continue
            rel = "%s/%s" % (folder, name)
            module = rel.rsplit(".", 1)[0]
            graph.setdefault(module, [])
            with open(os.path.join(path, name), encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    where = "agent/%s:%d: #include \"%s\"" % (rel, lineno, inc)
                    parts = inc.split("/")
                    if len(parts) != 2 or parts[0] not in RANK:
                        errors.append("%s: write includes as \"FOLDER/NAME.h\" with a known folder" % where)
                        continue
                    if inc.rsplit(".", 1)[0] != module:
                        graph[module].append(inc.rsplit(".", 1)[0])
                    other = parts[0]
                    if other == folder:
                        continue
                    if parts[1].endswith("_internal.h"):
                        errors.append("%s: a header internal to agent/%s/" % (where, other))
                    elif RANK[other] >= RANK[folder]:
                        errors.append("%s: %s (layer %d) may not include %s (layer %d)"
                                      % (where, folder, RANK[folder], other, RANK[other]))
    errors += cycles(graph)
    for e in errors:
        print(e)
    if errors:
        return 1
    by_rank = {}
    for folder, rank in RANK.items():
        by_rank.setdefault(rank, []).append(folder)
    print("layers ok: " + " -> ".join("/".join(sorted(by_rank[r])) for r in sorted(by_rank, reverse=True)))
    return 0


def cycles(graph):
    """Include cycles between modules (a .c and its .h), each reported by the path that closes it."""
    found = []
    state = {}
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                found.append("include cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt in graph and not state.get(nxt):
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node)
    return found


if __name__ == "__main__":
    sys.exit(main())
