"""Fail when the modules of a Rust crate import each other in a cycle.

Reads every ``.rs`` file under each crate's ``src/``, maps it to its module path
(``executor/job.rs`` -> ``executor::job``, ``bridge/mod.rs`` -> ``bridge``), collects the
modules it names through ``crate::``, ``super::`` or ``self::`` paths (in ``use`` items and in
expressions), and looks for a cycle among them. A module's dependency on its own submodules
(``mod.rs`` re-exports) and a submodule's on its parent are ignored: those are one module.

Usage: python scripts/check_module_cycles.py rust/core rust/nif rust/pyext
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super|self)::\{([^;]*)\};", re.S)


def module_of(src: Path, file: Path) -> tuple[str, ...]:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def resolve(current: tuple[str, ...], anchor: str, rest: list[str]) -> list[str]:
    """The absolute module path a `crate::`, `super::` or `self::` path names."""
    if anchor == "crate":
        base: list[str] = []
    else:
        # `self` is the module itself; `super` its parent. In `foo.rs` and `foo/mod.rs` alike,
        # the module is `foo`.
        base = list(current)
        if anchor == "super":
            base = base[:-1]
    return base + rest


def strip_comments(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def deps_of(src: Path, file: Path, modules: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    current = module_of(src, file)
    text = strip_comments(file.read_text())
    paths: list[tuple[str, list[str]]] = []
    for anchor, group in USE_GROUP_RE.findall(text):
        for item in re.split(r",(?![^{]*\})", group):
            names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", item.split("{")[0])
            if names:
                paths.append((anchor, names))
    for match in PATH_RE.finditer(text):
        rest = [p for p in match.group(2).split("::") if p and p != "{"]
        paths.append((match.group(1), rest))
    found: set[tuple[str, ...]] = set()
    for anchor, rest in paths:
        full = resolve(current, anchor, rest)
        # The longest prefix that is a module.
        for n in range(len(full), -1, -1):
            candidate = tuple(full[:n])
            if candidate in modules:
                found.add(candidate)
                break
    # A module and its own descendants or ancestors are one unit here.
    return {d for d in found if d[: len(current)] != current and current[: len(d)] != d}


def find_cycle(graph: dict[tuple[str, ...], set[tuple[str, ...]]]) -> list[tuple[str, ...]] | None:
    state: dict[tuple[str, ...], int] = {}
    stack: list[tuple[str, ...]] = []

    def visit(node: tuple[str, ...]) -> list[tuple[str, ...]] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def check(crate: Path) -> bool:
    src = crate / "src"
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(src, f) for f in files}
    graph: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for file in files:
        # Edges between leaf modules: a `mod.rs` that only declares and re-exports its
        # submodules is their parent, not a module of its own in the graph.
        graph.setdefault(module_of(src, file), set()).update(deps_of(src, file, modules))
    cycle = find_cycle(graph)
    if cycle:
        print(f"{crate}: import cycle: " + " -> ".join("::".join(m) or "crate" for m in cycle))
        return False
    print(f"{crate}: {len(modules)} modules, no import cycle")
    return True


def main(argv: list[str]) -> int:
    # Every crate is checked and reported, even after a failure.
    results = [check(Path(arg)) for arg in argv[1:]]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
