"""scripts/check_docs.py: how it reads shell sessions, markers and expected outputs (the
examples themselves run in `make test-docs`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_docs.py"
IN_BEAM = "erlang._native" in sys.builtin_module_names

pytestmark = pytest.mark.skipif(IN_BEAM or not SCRIPT.exists(), reason="a checkout's script")


@pytest.fixture(scope="module")
def check_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_docs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_docs"] = module
    spec.loader.exec_module(module)
    return module


def split(check_docs: ModuleType, tmp_path: Path, text: str) -> Any:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return check_docs.split_markdown(page)


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("{ok,[erlang_python]}", "{ok,[erlang_python]}", True),
        ("{ok, [erlang_python]}", "{ok,[erlang_python]}\n", True),
        ("{ok,[]}", "{ok,[erlang_python]}", False),
        ('<<"a b">>', '<<"ab">>', False),
        ("<0.123.0>", "<0.85.0>", True),
        ("#Ref<...>", "#Ref<0.1.2.3>", True),
        ("#Ref<...>", "<0.1.2>", False),
        ("[1,2,...,30]", "[1,2,3,4,\n 5,30]", True),
        ("#{a => ...,b => 1}", "#{a => 7,b => 2}", False),
        ("** exception error: ...", "** exception error: bad argument\n  in f/1", True),
    ],
)
def test_outputs_match_whitespace_and_placeholders_aside(
    check_docs: ModuleType, expected: str, actual: str, matches: bool
) -> None:
    assert check_docs.output_matches(expected, actual) is matches


def test_shell_prompts_continue_until_the_dot(check_docs: ModuleType) -> None:
    block = check_docs.Block(
        "erlang",
        10,
        "1> X = lists:seq(1,\n1>     3).\n[1,2,3]\n2> Y = 2,  % a comment.\n   X ++ [Y].\n"
        "[1,2,3,2]\n3> ok.\n",
    )
    prompts = check_docs.shell_prompts(block)
    assert [(p.line, p.source, p.expected) for p in prompts] == [
        (10, "X = lists:seq(1,\n    3).", "[1,2,3]"),
        (13, "Y = 2,  % a comment.\n   X ++ [Y].", "[1,2,3,2]"),
        (16, "ok.", ""),
    ]


def test_block_kinds(check_docs: ModuleType) -> None:
    def block(lang: str, text: str, **markers: str) -> Any:
        return check_docs.Block(lang, 1, text, {k.replace("_", "-"): v for k, v in markers.items()})

    assert check_docs.erlang_kind(block("erlang", "1> ok.\nok\n")) == "shell"
    assert check_docs.erlang_kind(block("erlang", "%% x\n-spec f() -> ok.\n")) == "declarations"
    assert check_docs.erlang_kind(block("erlang", "ok = f().\n")) == "program"
    kind = check_docs.python_kind
    assert kind(block("python", "# shop.py\nX = 1\n")) == ("module", "python")
    assert kind(block("python", "# my_app/priv/python/shop.py\nX = 1\n")) == ("module", "python")
    assert check_docs.MODULE_RE.match("# my_app/priv/python/shop.py\n")[1] == "shop"
    assert kind(block("python", "# shop.py is a module\nX = 1\n")) != ("module", "python")
    assert kind(block("python", "def test_x(beam):\n    pass\n")) == ("pytest", "python")
    assert kind(block("python", "from erlang.testing import MockBeam\n")) == ("script", "python")
    assert kind(block("python", "import erlang\n")) == ("script", "beam")
    assert kind(block("python", "import erlang\n", run_in="python")) == ("script", "python")
    assert kind(block("pycon", ">>> 1\n1\n")) == ("doctest", "beam")


def test_markers(check_docs: ModuleType, tmp_path: Path) -> None:
    doc = split(
        check_docs,
        tmp_path,
        "<!-- check-docs: no-run needs a venv -->\n```erlang\nok.\n```\n\n"
        "<!-- check-docs: skip -->\n```erlang\nskipped.\n```\n"
        "<!-- check-docs: run-in python -->\n\n```python\nx = 1\n```\n"
        "<!-- check-docs: no-run -->\n<!-- check-docs: run-in moon -->\n"
        "<!-- check-docs: sometimes -->\n```erlang\nok.\n```\n",
    )
    assert [(b.lang, b.markers) for b in doc.blocks] == [
        ("erlang", {"no-run": "needs a venv"}),
        ("python", {"run-in": "python"}),
        ("erlang", {}),
    ]
    assert [line for line, _ in doc.bad_markers] == [15, 16, 17]
