#!/usr/bin/env python3
"""Check the code in README.md and docs/*.md against the tree (run by `make lint`).

- ```python / ```pycon blocks must parse (`ast.parse`; `>>>` sessions are reduced to their input).
- In ```erlang blocks and in inline code, every call `py:f(...)`, `py_pool:f(...)`,
  `py_semaphore:f(...)` and every reference `py:f/N` names a function that module exports with
  that arity; in ```elixir blocks, every `:py.f(...)` (piped or not) and `&:py.f/N`. Exports are
  read from the `-export` attributes in erlang/src/*.erl.
- In ```sh / ```bash / ```shell / ```console blocks, `make TARGET` names a Makefile target.
- Relative links point at files that exist.

A block whose fence is preceded by `<!-- check-docs: skip -->` is not checked; nothing between
`<!-- check-docs: off -->` and `<!-- check-docs: on -->` is (for names that no longer exist,
in a migration guide).

Usage: check_docs.py [--erlang-src DIR] [FILE.md ...]   (default: README.md docs/*.md)
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED_MODULES = ("py", "py_pool", "py_semaphore")
PYTHON_LANGS = {"python", "py", "python3", "pycon"}
ERLANG_LANGS = {"erlang", "erl"}
ELIXIR_LANGS = {"elixir", "ex", "exs", "iex"}
SHELL_LANGS = {"sh", "bash", "shell", "console", "shell-session"}

_MOD = "|".join(CHECKED_MODULES)
FENCE_RE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
MARKER_RE = re.compile(r"<!--\s*check-docs:\s*(skip|off|on)\s*-->")
INLINE_CODE_RE = re.compile(r"(`+)(.+?)\1")
LINK_RE = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\s*\[[^\]]+\]:\s*(\S+)")
MAKE_RE = re.compile(r"(?:^|[;&|]\s*|^\$\s+)make\b([^;&|#\n]*)")
PROMPT_RE = re.compile(r"^\s*(?:\([^)]*\))?\d+>\s?")
IEX_PROMPT_RE = re.compile(r"^\s*(?:iex|\.\.\.)(?:\([^)]*\))?>\s?")


@dataclass(frozen=True)
class Syntax:
    """What the arity counter and the call finder need to know about a language."""

    comment: str  # starts a comment running to the end of the line
    char_literal: str  # `$a` in Erlang, `?a` in Elixir
    word_chars: str  # besides alphanumerics
    blocks: frozenset[str]  # keywords opening a block closed by `end`
    fun_block: str  # opens a block only when followed by `(` (Erlang `fun (X) -> ... end`)
    call_re: re.Pattern[str]  # groups: module, function
    ref_re: re.Pattern[str]  # groups: module, function, arity
    pipe: str  # a piped call takes one more argument than it shows


ERLANG = Syntax(
    comment="%",
    char_literal="$",
    word_chars="_@",
    blocks=frozenset({"begin", "case", "if", "receive", "try", "maybe"}),
    fun_block="fun",
    call_re=re.compile(rf"(?<![\w@.:])({_MOD}):([a-z][A-Za-z0-9_@]*|'[^']*')\s*\("),
    ref_re=re.compile(rf"(?<![\w@.:])({_MOD}):([a-z][A-Za-z0-9_@]*|'[^']*')/(\d+)"),
    pipe="",
)
ELIXIR = Syntax(
    comment="#",
    char_literal="?",
    word_chars="_?!",
    blocks=frozenset({"do", "fn"}),
    fun_block="",
    call_re=re.compile(rf"(?<![\w.]):({_MOD})\.([a-z_][A-Za-z0-9_]*[?!]?)\s*\("),
    ref_re=re.compile(rf"&:({_MOD})\.([a-z_][A-Za-z0-9_]*[?!]?)/(\d+)"),
    pipe="|>",
)


@dataclass
class Block:
    """A fenced code block: its language, the line its body starts on, and its text."""

    lang: str
    line: int
    text: str


@dataclass
class Doc:
    """A markdown file split into checked code blocks and checked prose lines."""

    path: Path
    blocks: list[Block] = field(default_factory=list)
    prose: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Report:
    """Errors found, with counts of what was checked."""

    errors: list[tuple[str, int, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def error(self, path: Path, line: int, msg: str) -> None:
        self.errors.append((display(path), line, msg))

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def split_markdown(path: Path) -> Doc:
    """Split a markdown file into fenced blocks and prose, honouring the check-docs markers."""
    doc = Doc(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    checking = True
    skip_next = False
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER_RE.search(line)
        if marker:
            kind = marker.group(1)
            if kind == "skip":
                skip_next = True
            else:
                checking = kind == "on"
            i += 1
            continue
        fence = FENCE_RE.match(line)
        if fence:
            indent, ticks, lang = fence.groups()
            body: list[str] = []
            j = i + 1
            while j < len(lines) and not closes(lines[j], ticks):
                body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
                j += 1
            if checking and not skip_next:
                doc.blocks.append(Block(lang.lower(), i + 2, "\n".join(body) + "\n"))
            skip_next = False
            i = j + 1
            continue
        if line.strip():
            skip_next = False
        if checking:
            doc.prose.append((i + 1, line))
        i += 1
    return doc


def closes(line: str, fence: str) -> bool:
    """Whether `line` closes a block opened by `fence` (CommonMark: as long, same character)."""
    s = line.strip()
    return len(s) >= len(fence) and set(s) == {fence[0]}


# --- Erlang exports ------------------------------------------------------------------------


def strip_erlang_comments(src: str) -> str:
    """Drop `%` comments, leaving strings, quoted atoms and character literals alone."""
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "%":
            while i < n and src[i] != "\n":
                i += 1
            continue
        if c in "\"'":
            j = skip_quoted(src, i)
            out.append(src[i:j])
            i = j
            continue
        if c == "$" and i + 1 < n:
            j = i + 3 if src[i + 1] == "\\" else i + 2
            out.append(src[i:j])
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out)


def skip_quoted(src: str, i: int) -> int:
    """Index just past the string or quoted atom starting at `src[i]`."""
    quote = src[i]
    i += 1
    while i < len(src) and src[i] != quote:
        i += 2 if src[i] == "\\" else 1
    return i + 1


def read_exports(src_dir: Path) -> dict[str, set[tuple[str, int]]]:
    """Map each module in `src_dir` to its exported (function, arity) pairs."""
    exports: dict[str, set[tuple[str, int]]] = {}
    for erl in sorted(src_dir.glob("*.erl")):
        src = strip_erlang_comments(erl.read_text(encoding="utf-8"))
        module = re.search(r"^-module\(\s*'?([^')\s]+)'?\s*\)", src, re.M)
        if not module:
            continue
        funs: set[tuple[str, int]] = set()
        for attr in re.finditer(r"^-export\s*\(\s*\[(.*?)\]\s*\)\s*\.", src, re.M | re.S):
            for name, arity in re.findall(r"('[^']*'|[a-z][A-Za-z0-9_@]*)\s*/\s*(\d+)", attr[1]):
                funs.add((name.strip("'"), int(arity)))
        exports[module[1]] = funs
    return exports


def call_arity(text: str, start: int, syntax: Syntax = ERLANG) -> int | None:
    """Arity of the call whose argument list starts just after the `(` at `text[start - 1]`.

    Counts the commas at nesting depth 0, where brackets, binaries and keyword blocks
    (`case ... end`, `fun (...) -> ... end`, `fn ... end`) nest. None if the parenthesis is
    never closed.
    """
    depth = 0
    commas = 0
    seen_arg = False
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c == syntax.comment and not text.startswith("#{", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c in "\"'":
            i = skip_quoted(text, i)
            seen_arg = True
            continue
        if c == syntax.char_literal and i + 1 < n:
            i += 3 if text[i + 1] == "\\" else 2
            seen_arg = True
            continue
        if text.startswith("<<", i):
            depth += 1
            i += 2
            seen_arg = True
            continue
        if text.startswith(">>", i) and depth > 0:
            depth -= 1
            i += 2
            continue
        if c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] in syntax.word_chars):
                j += 1
            word = text[i:j]
            rest = text[j:].lstrip()
            if (word in syntax.blocks and not rest.startswith(":")) or (
                word == syntax.fun_block and rest.startswith("(")
            ):
                depth += 1
            elif word == "end" and depth > 0:
                depth -= 1
            i = j
            seen_arg = True
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return commas + 1 if seen_arg else 0
            depth -= 1
        elif c == "," and depth == 0:
            commas += 1
        if not c.isspace():
            seen_arg = True
        i += 1
    return None


def check_calls(
    text: str,
    path: Path,
    first_line: int,
    exports: dict[str, set[tuple[str, int]]],
    report: Report,
    syntax: Syntax = ERLANG,
) -> None:
    """Check every `py:f(...)` call and `py:f/N` reference (Elixir: `:py.f(...)`) in `text`."""
    for m in syntax.call_re.finditer(text):
        line = first_line + text.count("\n", 0, m.start())
        arity = call_arity(text, m.end(), syntax)
        if arity is None:
            report.error(path, line, f"call of {m[1]}:{m[2]} is never closed")
            continue
        if syntax.pipe and text[: m.start()].rstrip().endswith(syntax.pipe):
            arity += 1
        check_function(m[1], m[2].strip("'"), arity, path, line, exports, report)
    for m in syntax.ref_re.finditer(text):
        line = first_line + text.count("\n", 0, m.start())
        check_function(m[1], m[2].strip("'"), int(m[3]), path, line, exports, report)


def check_function(
    module: str,
    name: str,
    arity: int,
    path: Path,
    line: int,
    exports: dict[str, set[tuple[str, int]]],
    report: Report,
) -> None:
    report.count("erlang functions")
    funs = exports.get(module)
    if funs is None:
        report.error(path, line, f"module {module} not found (no {module}.erl with -module)")
    elif (name, arity) not in funs:
        have = sorted(a for f, a in funs if f == name)
        hint = f" (exported arities: {', '.join(map(str, have))})" if have else ""
        report.error(path, line, f"{module}:{name}/{arity} is not exported{hint}")


# --- Python --------------------------------------------------------------------------------


def python_source(text: str) -> str:
    """The code of a block: the input lines of a `>>>` session, or the block itself."""
    lines = text.splitlines()
    if not any(line.lstrip().startswith(">>>") for line in lines):
        return text
    code: list[str] = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith((">>> ", "... ")) or stripped in (">>>", "..."):
            code.append(stripped[4:])
    return "\n".join(code) + "\n"


def check_python(block: Block, path: Path, report: Report) -> None:
    report.count("python blocks")
    try:
        ast.parse(python_source(block.text), filename=display(path))
    except SyntaxError as e:
        line = block.line + (e.lineno or 1) - 1
        report.error(path, line, f"python block does not parse: {e.msg}")


# --- Shell and links -----------------------------------------------------------------------


def make_targets(makefile: Path) -> set[str]:
    targets: set[str] = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.%-]+(?:\s+[A-Za-z0-9_.%-]+)*)\s*:(?!=)", line)
        if m:
            targets.update(m[1].split())
    return targets


def check_shell(block: Block, path: Path, targets: set[str], report: Report) -> None:
    for offset, line in enumerate(block.text.splitlines()):
        for m in MAKE_RE.finditer(line.strip()):
            for word in m[1].split():
                # Options, variables, and the backslash that continues the command.
                if word.startswith("-") or "=" in word or word == "\\":
                    continue
                report.count("make targets")
                if word not in targets:
                    report.error(path, block.line + offset, f"make target {word!r} not in Makefile")


def check_links(doc: Doc, report: Report) -> None:
    for line_no, line in doc.prose:
        for m in LINK_RE.finditer(INLINE_CODE_RE.sub("", line)):
            target = m[1] or m[2]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            report.count("links")
            if not (doc.path.parent / target.split("#", 1)[0]).exists():
                report.error(doc.path, line_no, f"link target {target} does not exist")


# --- Main ----------------------------------------------------------------------------------


def iter_inline_code(doc: Doc) -> Iterator[tuple[int, str]]:
    for line_no, line in doc.prose:
        for m in INLINE_CODE_RE.finditer(line):
            yield line_no, m[2]


def check(paths: list[Path], erlang_src: Path) -> Report:
    report = Report()
    exports = read_exports(erlang_src)
    targets = make_targets(ROOT / "Makefile")
    for path in paths:
        report.count("files")
        doc = split_markdown(path)
        for block in doc.blocks:
            if block.lang in PYTHON_LANGS:
                check_python(block, path, report)
            elif block.lang in ERLANG_LANGS:
                report.count("erlang blocks")
                text = "\n".join(PROMPT_RE.sub("", line) for line in block.text.splitlines())
                check_calls(text, path, block.line, exports, report)
            elif block.lang in ELIXIR_LANGS:
                report.count("elixir blocks")
                text = "\n".join(IEX_PROMPT_RE.sub("", line) for line in block.text.splitlines())
                check_calls(text, path, block.line, exports, report, ELIXIR)
            elif block.lang in SHELL_LANGS:
                check_shell(block, path, targets, report)
        for line_no, code in iter_inline_code(doc):
            check_calls(code, path, line_no, exports, report)
        check_links(doc, report)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("files", nargs="*", type=Path, help="markdown files to check")
    parser.add_argument(
        "--erlang-src", type=Path, default=ROOT / "erlang" / "src", help="where the .erl files are"
    )
    args = parser.parse_args(argv)
    paths: list[Path] = args.files or [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"check_docs: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    report = check(paths, args.erlang_src)
    for file, line, msg in sorted(report.errors):
        print(f"{file}:{line}: {msg}", file=sys.stderr)
    summary = ", ".join(f"{n} {what}" for what, n in report.counts.items())
    status = f"{len(report.errors)} error(s)" if report.errors else "ok"
    print(f"check_docs: {status} ({summary})")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
