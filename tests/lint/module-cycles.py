#!/usr/bin/env python3
"""No import cycle between the top-level modules of a crate (issue 13).

For every crate's src/ folder, an edge a -> b is a non-comment `crate::b` in module a (a file
a.rs or a folder a/). A cycle means two modules depend on each other: one concept leaked into
the other. Prints each cycle and exits 1; silent and 0 when there is none.
Run from the repository root: python3 tests/lint/module-cycles.py
"""
import glob
import os
import re
import sys

ROOTS = sorted(
    os.path.dirname(p)
    for p in glob.glob("**/src/lib.rs", recursive=True) + glob.glob("**/src/main.rs", recursive=True)
    if not p.startswith("target/")
)


def edges_of(root):
    edges = {}
    for f in glob.glob(root + "/**/*.rs", recursive=True):
        top = os.path.relpath(f, root).split("/")[0].removesuffix(".rs")
        if top in ("lib", "main"):
            continue
        with open(f, encoding="utf-8") as src:
            for line in src:
                if line.strip().startswith("//"):
                    continue
                for m in re.finditer(r"crate::([a-z_0-9]+)", line):
                    t = m.group(1)
                    if t != top and (os.path.exists(f"{root}/{t}.rs") or os.path.isdir(f"{root}/{t}")):
                        edges.setdefault(top, set()).add(t)
    return edges


def reaches(edges, a, b):
    seen, todo = set(), [a]
    while todo:
        for n in edges.get(todo.pop(), ()):
            if n == b:
                return True
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return False


found = False
for root in dict.fromkeys(ROOTS):
    edges = edges_of(root)
    for a, b in sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if reaches(edges, b, a)}):
        print(f"{root}: modules {a} and {b} depend on each other (through crate:: paths)")
        found = True
sys.exit(1 if found else 0)
