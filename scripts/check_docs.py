#!/usr/bin/env python3
"""Check the code in README.md and docs/*.md against the tree, and with --run execute it.

Static checks (`make lint-docs`, no build needed):

- ```python / ```pycon blocks must parse (`ast.parse`; `>>>` sessions are reduced to their input).
- In ```erlang blocks and in inline code, every call `py:f(...)`, `py_pool:f(...)`,
  `py_semaphore:f(...)`, `py_asgi:f(...)`, `py_wsgi:f(...)`, `py_http:f(...)` and every
  reference `py:f/N` names a function that module exports with that arity; in ```elixir
  blocks, every `:py.f(...)` (piped or not) and `&:py.f/N`. Exports are read from the
  `-export` attributes of the application's src/*.erl.
- In ```sh / ```bash / ```shell / ```console blocks, `make TARGET` names a Makefile target.
- Relative links point at files that exist.

With --run (`make test-docs`, needs the built NIF and `make pyext`), the examples run, one
fresh BEAM per page (scripts/check_docs_node.erl) in which erlang_python is started before the
first example (unless that example starts it itself):

- An ```erlang block of shell prompts (`1> Expr.`, continued on following lines) is evaluated
  prompt by prompt with the bindings of the page's earlier prompts, and what the shell would
  print is compared with the lines after the prompt, whitespace aside. In the expected text
  `...` stands for any text (an elided traceback, a long list), and any pid (`<0.123.0>`),
  `#Ref<...>`, `#Fun<...>` and `#Port<...>` for one of its kind.
- Any other ```erlang block is a small program: its forms (each ends with a dot) run in order,
  with bindings of their own, and must not raise; pattern matches are its assertions. Blocks of
  attributes (`-spec`, `-type`) are declarations and do not run.
- A ```python block runs where it fits: a pytest file (it defines `test_` functions) under
  pytest, and a script that uses `erlang.testing` with plain Python, each in a process of its
  own (the venv's Python, with the pip-installed `erlang`); any other block inside the page's
  BEAM (`py:exec/1` in `__main__`), after the Erlang examples before it. A block whose first
  line is `# name.py` is that module: it is written to a directory on `sys.path` (the page's
  BEAM and the plain Python runs) for the examples that import it. A ```pycon (or `>>>`)
  session runs under `doctest` in the world a script would, `...` in an expected output
  standing for any text.
- ```elixir blocks are checked statically only, for now: a runner for them is one more block
  kind below (`BlockKind`) and one more command in check_docs_node.erl.

Markers, on the lines just before a block's fence:

- `<!-- check-docs: skip -->`: the block is neither checked nor run;
- `<!-- check-docs: no-run REASON -->`: checked but never run; REASON (why it cannot run
  here: it needs a network, a venv at a fixed path...) is required;
- `<!-- check-docs: run-in beam|python -->`: where a ```python block runs (python: plain
  Python, outside any BEAM);
- nothing between `<!-- check-docs: off -->` and `<!-- check-docs: on -->` is checked (for names
  that no longer exist, in a migration guide).

Usage: check_docs.py [--erlang-src DIR] [--run --ebin DIR] [FILE.md ...]
(default: README.md docs/*.md)
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED_MODULES = ("py", "py_pool", "py_semaphore", "py_asgi", "py_wsgi", "py_http")
PYTHON_LANGS = {"python", "py", "python3", "pycon"}
ERLANG_LANGS = {"erlang", "erl"}
ELIXIR_LANGS = {"elixir", "ex", "exs", "iex"}
SHELL_LANGS = {"sh", "bash", "shell", "console", "shell-session"}

_MOD = "|".join(CHECKED_MODULES)
FENCE_RE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
MARKER_RE = re.compile(r"<!--\s*check-docs:\s*([a-z-]+)\b\s*(.*?)\s*-->")
BLOCK_MARKERS = {"skip", "no-run", "run-in"}
RUN_IN = {"beam", "python"}
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
    """A fenced code block: its language, the line its body starts on, its text, and the
    markers before it (`no-run` with its reason, `run-in`)."""

    lang: str
    line: int
    text: str
    markers: dict[str, str] = field(default_factory=dict)


@dataclass
class Doc:
    """A markdown file split into checked code blocks and checked prose lines, with the
    markers that are wrong (line, message)."""

    path: Path
    blocks: list[Block] = field(default_factory=list)
    prose: list[tuple[int, str]] = field(default_factory=list)
    bad_markers: list[tuple[int, str]] = field(default_factory=list)


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
    markers: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER_RE.search(line)
        if marker:
            kind, arg = marker.groups()
            problem = marker_problem(kind, arg)
            if problem:
                doc.bad_markers.append((i + 1, problem))
            elif kind in BLOCK_MARKERS:
                markers[kind] = arg
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
            if checking and "skip" not in markers:
                text = "\n".join(body) + "\n"
                doc.blocks.append(Block(lang.lower(), i + 2, text, markers))
            markers = {}
            i = j + 1
            continue
        if line.strip():
            markers = {}
        if checking:
            doc.prose.append((i + 1, line))
        i += 1
    return doc


def marker_problem(kind: str, arg: str) -> str | None:
    """What is wrong with a `<!-- check-docs: KIND ARG -->` marker, if anything."""
    if kind in ("skip", "off", "on"):
        return f"marker {kind!r} takes no argument" if arg else None
    if kind == "no-run":
        return None if arg else "marker 'no-run' needs a reason: why the block cannot run"
    if kind == "run-in":
        return None if arg in RUN_IN else f"marker 'run-in' takes one of {sorted(RUN_IN)}"
    return f"unknown check-docs marker {kind!r}"


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


# --- Running the examples (--run) -----------------------------------------------------------

NODE_SOURCE = Path(__file__).resolve().parent / "check_docs_node.erl"
# A failure deadline for one request to a page's BEAM (a hung example), not a measured bound.
REQUEST_TIMEOUT = 300.0
PLAIN_TIMEOUT = 300.0
# `# shop.py`, or with the directory it lives in: `# my_app/priv/python/shop.py`.
MODULE_RE = re.compile(r"\A#\s*(?:[\w.-]+/)*([A-Za-z_][A-Za-z0-9_]*)\.py\s*\n")
TEST_FUNCTION_RE = re.compile(r"^(?:async\s+)?def\s+test_", re.M)
STARTS_APP_RE = re.compile(r"application:(?:ensure_all_started|start)\(\s*erlang_python\b")
PLACEHOLDER_RE = re.compile(r"\.\.\.|<\d+\.\d+\.\d+>|#(?:Ref|Fun|Port)<[^>]*>")
PLACEHOLDERS = {
    "pid": r"<\d+\.\d+\.\d+>",
    "#Ref": r"#Ref<[0-9.]+>",
    "#Fun": r"#Fun<[^>]*>",
    "#Port": r"#Port<[0-9.]+>",
}


class NodeError(Exception):
    """The page's BEAM died or stopped answering."""


class Node:
    """A fresh BEAM running check_docs_node: one per page, started on first use.

    Requests and replies travel over two pipes of their own (4-byte length packets); the
    node's standard output and error, where examples print, go to a log file.
    """

    def __init__(self, ebin: Path, driver_dir: Path, log: Path) -> None:
        req_read, self._req = os.pipe()
        self._resp, resp_write = os.pipe()
        self.log = log
        # A node that crashes writes no erl_crash.dump into the checkout.
        env = {**os.environ, "ERL_CRASH_DUMP_SECONDS": "0"}
        with log.open("wb") as out:
            self._proc = subprocess.Popen(
                ["erl", "-noinput", "-pa", str(ebin), "-pa", str(driver_dir),
                 "-run", "check_docs_node", "main", str(req_read), str(resp_write)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=(req_read, resp_write), env=env,
            )  # fmt: skip
        os.close(req_read)
        os.close(resp_write)

    def request(self, command: str, text: str = "") -> tuple[str, str]:
        """Sends one command; returns the reply's status and text."""
        payload = f"{command}\n{text}".encode()
        packet = memoryview(struct.pack(">I", len(payload)) + payload)
        try:
            while packet:
                packet = packet[os.write(self._req, packet) :]
        except BrokenPipeError as e:
            raise NodeError(f"the page's BEAM exited ({self._proc.poll()})") from e
        size = struct.unpack(">I", self._read(4))[0]
        status, _, reply = self._read(size).decode().partition("\n")
        return status, reply

    def _read(self, n: int) -> bytes:
        data = b""
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while len(data) < n:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._resp], [], [], max(left, 0))
            if not ready:
                raise NodeError(f"no answer from the page's BEAM in {REQUEST_TIMEOUT:.0f} s")
            chunk = os.read(self._resp, n - len(data))
            if not chunk:
                raise NodeError(f"the page's BEAM exited ({self._proc.wait()})")
            data += chunk
        return data

    def close(self) -> None:
        try:
            self.request("quit")
        except (NodeError, OSError):
            pass
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._req)
        os.close(self._resp)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace").rstrip()
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Prompt:
    """One shell prompt of a block: where it is, what is typed, what the doc says comes out."""

    line: int
    source: str
    expected: str


def strip_erlang_line_comment(line: str) -> str:
    """The line without its `%` comment (strings, quoted atoms and `$%` left alone)."""
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "$":
            i += 1
        elif c == "%":
            return line[:i]
        i += 1
    return line


def input_complete(source: str) -> bool:
    """Whether shell input ends with a dot that ends a form (a reader's shell evaluates it)."""
    lines = [strip_erlang_line_comment(line).rstrip() for line in source.splitlines()]
    code = "\n".join(lines).rstrip()
    return code.endswith(".") and not code.endswith("..")


def shell_prompts(block: Block) -> list[Prompt]:
    """The prompts of a shell block, each with its (possibly continued) input and the output
    lines up to the next prompt."""
    lines = block.text.splitlines()
    prompts: list[Prompt] = []
    i = 0
    while i < len(lines):
        m = PROMPT_RE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        source = [lines[i][m.end() :]]
        i += 1
        while not input_complete("\n".join(source)) and i < len(lines):
            cont = PROMPT_RE.match(lines[i])
            source.append(lines[i][cont.end() :] if cont else lines[i])
            i += 1
        expected: list[str] = []
        while i < len(lines) and not PROMPT_RE.match(lines[i]):
            expected.append(lines[i])
            i += 1
        prompts.append(Prompt(block.line + start, "\n".join(source), "\n".join(expected).strip()))
    return prompts


def squeeze(text: str) -> str:
    """`text` without the whitespace outside strings and quoted atoms: the shell breaks long
    terms where its terminal width says, the docs where they like."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            out.append(c)
            if c == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'" and not (c == "'" and i > 0 and text[i - 1].isalpha()):
            quote = c
            out.append(c)
        elif not c.isspace():
            out.append(c)
        i += 1
    return "".join(out)


def output_matches(expected: str, actual: str) -> bool:
    """Whether the shell's output is what the doc shows, whitespace aside, with its
    placeholders (`...`, a pid, `#Ref<...>`, `#Fun<...>`, `#Port<...>`) standing for any."""
    pattern: list[str] = []
    expected = squeeze(expected)
    pos = 0
    for m in PLACEHOLDER_RE.finditer(expected):
        pattern.append(re.escape(expected[pos : m.start()]))
        token = m.group()
        if token == "...":
            pattern.append(".*?")
        elif token.startswith("<"):
            pattern.append(PLACEHOLDERS["pid"])
        else:
            pattern.append(PLACEHOLDERS[token.split("<", 1)[0]])
        pos = m.end()
    pattern.append(re.escape(expected[pos:]))
    return re.fullmatch("".join(pattern), squeeze(actual), re.S) is not None


def erlang_kind(block: Block) -> str:
    """`shell` (prompts), `declarations` (attributes: specs, types) or `program`."""
    if any(PROMPT_RE.match(line) for line in block.text.splitlines()):
        return "shell"
    code = [strip_erlang_line_comment(line).strip() for line in block.text.splitlines()]
    first = next((line for line in code if line), "")
    return "declarations" if first.startswith("-") else "program"


def python_kind(block: Block) -> tuple[str, str]:
    """What a Python block is, and where it runs: `("module", "python")` (a file others
    import), `("pytest", "python")` (a test file), `("doctest", world)` (a >>> session) or
    `("script", world)`, with `world` `python` (plain Python) or `beam`."""
    if MODULE_RE.match(block.text):
        return "module", "python"
    if TEST_FUNCTION_RE.search(block.text):
        return "pytest", "python"
    kind = (
        "doctest" if block.lang == "pycon" or python_source(block.text) != block.text else "script"
    )
    where = block.markers.get("run-in")
    if where is None:
        where = "python" if "erlang.testing" in block.text else "beam"
    return kind, where


@dataclass
class BlockKind:
    """How blocks of some languages run: `run(page, block)` reports failures itself."""

    langs: frozenset[str]
    run: Callable[[Page, Block], None]


class Page:
    """The examples of one page, run in order: its BEAM (started on first use), a directory
    for its modules and plain Python files, and where failures are reported."""

    def __init__(self, doc: Doc, ebin: Path, driver_dir: Path, report: Report) -> None:
        self.doc = doc
        self.ebin = ebin
        self.driver_dir = driver_dir
        self.report = report
        self.dir = Path(tempfile.mkdtemp(prefix="check_docs_"))
        self.modules = self.dir / "modules"
        self.modules.mkdir()
        self._node: Node | None = None
        self._shell_started = False

    def fail(self, line: int, msg: str) -> None:
        self.report.error(self.doc.path, line, msg)

    def ask(self, block: Block, line: int, command: str, text: str = "") -> tuple[str, str] | None:
        """One request to the page's BEAM, started on first use (with erlang_python running,
        unless `block`, the example about to run, starts it itself); None, and a failure
        reported, when the BEAM died or hangs (the next request starts a fresh one)."""
        if self._node is None:
            self._node = Node(self.ebin, self.driver_dir, self.dir / "beam.log")
            startup = [("path", str(self.modules))]
            if not (block.lang in ERLANG_LANGS and STARTS_APP_RE.search(block.text)):
                startup.insert(0, ("start", ""))
            for setup in startup:
                if self._request(line, *setup) is None:
                    return None
        return self._request(line, command, text)

    def _request(self, line: int, command: str, text: str) -> tuple[str, str] | None:
        assert self._node is not None
        try:
            reply = self._node.request(command, text)
        except NodeError as e:
            self.fail(line, f"{e}; its output ends with:\n{self._node.log_tail()}")
            self._node.close()
            self._node = None
            return None
        if command in ("start", "path") and reply[0] != "ok":
            self.fail(line, f"the page's BEAM could not {command}: {reply[1]}")
        return reply

    def close(self) -> None:
        if self._node is not None:
            self._node.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def plain_python(self, line: int, args: list[str], what: str) -> None:
        """Runs `python ARGS` in the page's directory (its modules importable); a failure
        is reported with the end of the output."""
        env = {**os.environ, "PYTHONPATH": str(self.modules)}
        env.pop("PYTHONSTARTUP", None)
        try:
            done = subprocess.run(
                [sys.executable, *args], cwd=self.dir, env=env, capture_output=True,
                text=True, timeout=PLAIN_TIMEOUT,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            self.fail(line, f"{what} did not finish in {PLAIN_TIMEOUT:.0f} s")
            return
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).rstrip().splitlines()[-20:])
            self.fail(line, f"{what} failed (exit status {done.returncode}):\n{tail}")


def raised(reply: tuple[str, str], first_line: int) -> tuple[int, str]:
    """The doc line and the text of an exception the page's BEAM reported (its first line is
    the line of the expression that raised, counted from 1 in the text that ran)."""
    line, _, text = reply[1].partition("\n")
    return first_line + int(line) - 1 if line.isdigit() else first_line, text


def run_erlang(page: Page, block: Block) -> None:
    kind = erlang_kind(block)
    if kind == "declarations":
        page.report.count("erlang declarations (not run)")
        return
    if kind == "program":
        reply = page.ask(block, block.line, "block", block.text)
        page.report.count("erlang programs run")
        if reply and reply[0] != "ok":
            page.fail(*raised(reply, block.line))
        return
    for prompt in shell_prompts(block):
        reply = page.ask(block, prompt.line, "shell", prompt.source)
        if reply is None:
            return
        page.report.count("erlang prompts run")
        status, actual = reply
        if status == "exception":
            line, actual = raised(reply, prompt.line)
            if not prompt.expected.startswith("** exception"):
                page.fail(line, actual)
                continue
        if prompt.expected and not output_matches(prompt.expected, actual):
            page.fail(
                prompt.line,
                f"the shell prints\n{actual}\nwhere the doc shows\n{prompt.expected}",
            )


# A >>> session inside the BEAM: doctest in `__main__`, whose names it keeps (clear_globs), with
# `...` in an expected output standing for any text (ELLIPSIS), as in Erlang outputs.
BEAM_DOCTEST = """\
import doctest as _doctest
_runner = _doctest.DocTestRunner(optionflags=_doctest.ELLIPSIS)
_report = []
_runner.run(
    _doctest.DocTestParser().get_doctest({session!r}, globals(), "session", "session", 0),
    out=_report.append,
    clear_globs=False,
)
if _runner.failures:
    raise AssertionError("".join(_report))
"""


def run_python(page: Page, block: Block) -> None:
    kind, where = python_kind(block)
    page.report.count(f"python blocks run ({kind}, {where})")
    name = f"doc_{block.line}"
    if kind == "module":
        module = MODULE_RE.match(block.text)
        assert module is not None
        (page.modules / f"{module[1]}.py").write_text(block.text, encoding="utf-8")
    elif kind == "pytest":
        path = page.dir / f"test_{name}.py"
        path.write_text(block.text, encoding="utf-8")
        args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", path.name]
        page.plain_python(block.line, args, "the test file")
    elif where == "python":
        path = page.dir / (f"{name}.txt" if kind == "doctest" else f"{name}.py")
        path.write_text(block.text, encoding="utf-8")
        if kind == "doctest":
            args = ["-m", "doctest", "-o", "ELLIPSIS", path.name]
            page.plain_python(block.line, args, "the session")
        else:
            page.plain_python(block.line, [path.name], "the script")
    else:
        code = BEAM_DOCTEST.format(session=block.text) if kind == "doctest" else block.text
        reply = page.ask(block, block.line, "python", code)
        if reply and reply[0] != "ok":
            page.fail(block.line, f"the example raised inside the BEAM:\n{reply[1]}")


BLOCK_KINDS = [
    BlockKind(frozenset(ERLANG_LANGS), run_erlang),
    BlockKind(frozenset(PYTHON_LANGS), run_python),
]


def run_page(doc: Doc, ebin: Path, driver_dir: Path, report: Report) -> None:
    """Runs the examples of one page, in order, in a fresh BEAM of its own."""
    kinds = {lang: kind for kind in BLOCK_KINDS for lang in kind.langs}
    page = Page(doc, ebin, driver_dir, report)
    try:
        for block in doc.blocks:
            kind = kinds.get(block.lang)
            if kind is None:
                continue
            if "no-run" in block.markers:
                report.count("blocks marked no-run")
                continue
            kind.run(page, block)
    finally:
        page.close()


def compile_node(into: Path) -> None:
    """Compiles check_docs_node.erl into `into`."""
    # The application's own erl_opts: the driver is held to the same standard.
    options = ["+debug_info", "+warnings_as_errors", "+warn_missing_spec", "+warn_untyped_record"]
    subprocess.run(["erlc", *options, "-o", str(into), str(NODE_SOURCE)], check=True)


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
        for line_no, problem in doc.bad_markers:
            report.error(path, line_no, problem)
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


def run(paths: list[Path], ebin: Path) -> Report:
    """Runs the examples of every page (see the module's doc)."""
    report = Report()
    with tempfile.TemporaryDirectory(prefix="check_docs_node_") as driver_dir:
        compile_node(Path(driver_dir))
        for path in paths:
            report.count("pages run")
            run_page(split_markdown(path), ebin, Path(driver_dir), report)
    return report


def first_existing(*candidates: Path) -> Path:
    """The first of `candidates` that exists, else the last (for the error message)."""
    return next((c for c in candidates if c.exists()), candidates[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("files", nargs="*", type=Path, help="markdown files to check")
    parser.add_argument(
        "--erlang-src",
        type=Path,
        default=first_existing(ROOT / "src" / "py.erl", ROOT / "erlang" / "src" / "py.erl").parent,
        help="where the application's .erl files are",
    )
    parser.add_argument("--run", action="store_true", help="also run the examples")
    parser.add_argument(
        "--ebin",
        type=Path,
        default=first_existing(
            ROOT / "_build" / "default" / "lib" / "erlang_python" / "ebin",
            ROOT / "erlang" / "_build" / "default" / "lib" / "erlang_python" / "ebin",
        ),
        help="the built application, for --run",
    )
    args = parser.parse_args(argv)
    paths: list[Path] = args.files or [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"check_docs: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    report = check(paths, args.erlang_src)
    if args.run and not report.errors:
        if not (args.ebin / "erlang_python.app").is_file():
            print(f"check_docs: no erlang_python.app in {args.ebin}", file=sys.stderr)
            return 2
        ran = run(paths, args.ebin)
        report.errors += ran.errors
        report.counts.update(ran.counts)
    for file, line, msg in sorted(report.errors):
        print(f"{file}:{line}: {msg}", file=sys.stderr)
    summary = ", ".join(f"{n} {what}" for what, n in report.counts.items())
    status = f"{len(report.errors)} error(s)" if report.errors else "ok"
    print(f"check_docs: {status} ({summary})")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
