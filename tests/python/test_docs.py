"""The Python examples of docs/python-api.md work when copied."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)
SCRIPTS = [b for b in BLOCKS if "def test_" not in b]
TEST_FILES = [b for b in BLOCKS if "def test_" in b]


def test_the_doc_has_examples() -> None:
    assert len(SCRIPTS) >= 3
    assert len(TEST_FILES) >= 1


@pytest.mark.parametrize("code", SCRIPTS)
def test_script_examples_run(code: str) -> None:
    exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_example__"})


@pytest.mark.parametrize("code", TEST_FILES)
def test_test_file_examples_pass(pytester: pytest.Pytester, code: str) -> None:
    pytester.makepyfile(test_example=code)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    tests = len(re.findall(r"^def test_", code, re.M))
    result.assert_outcomes(passed=tests)
