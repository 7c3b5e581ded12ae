"""``erlang.Span`` and ``erlang.trace``: span maps as Erlang collects them (``py:get_traces()``),
nesting through contextvars, events, errors, the decorator, the tracing switch and the
Erlang-given parent. Tests marked ``embedded`` run against the mocked BEAM and again inside the
real one (the ``tracing`` fixture of conftest.py); tests/erlang/py_tracing_SUITE.erl covers the
Erlang API.
"""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

import erlang
from erlang import _tracing
from erlang._native import _span, _trace_enabled
from erlang.testing import MockBeam

if TYPE_CHECKING:
    from conftest import Tracing

KEYS = {
    "name",
    "trace_id",
    "span_id",
    "parent_id",
    "attributes",
    "start_time",
    "end_time",
    "duration_us",
    "status",
    "end_attrs",
    "events",
}


@pytest.mark.embedded
def test_names_are_exported_lazily() -> None:
    assert erlang.Span is _tracing.Span
    assert erlang.trace is _tracing.trace
    assert {"Span", "trace"} <= set(erlang.__all__)


def test_import_erlang_does_not_import_tracing() -> None:
    code = "import sys, erlang; print('erlang._tracing' in sys.modules, 'inspect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.embedded
def test_span_map_shape(tracing: Tracing) -> None:
    with erlang.Span("shape", user="bob", n=3, items=[1, "a"], pair=(1, None)) as span:
        assert isinstance(span.span_id, int)
    [got] = tracing.spans()
    assert set(got) == KEYS
    assert got["name"] == "shape"
    assert got["attributes"] == {"user": "bob", "n": 3, "items": [1, "a"], "pair": (1, None)}
    assert got["status"] == "ok"
    assert got["end_attrs"] == {}
    assert got["events"] == []
    assert got["parent_id"] is None
    assert got["span_id"] == span.span_id
    assert got["trace_id"] == span.trace_id
    assert 0 <= got["span_id"] < 2**64
    assert 0 <= got["trace_id"] < 2**128
    assert got["duration_us"] == got["end_time"] - got["start_time"] >= 0


@pytest.mark.embedded
def test_nesting_and_completion_order(tracing: Tracing) -> None:
    with erlang.Span("root") as root:
        with erlang.Span("a") as a:
            assert a.parent_id == root.span_id
            with erlang.Span("a1"):
                pass
        with erlang.Span("b"):
            pass
    with erlang.Span("other") as other:
        assert other.parent_id is None
    assert tracing.names() == ["a1", "a", "b", "root", "other"]
    assert tracing.by_name("a")["parent_id"] == root.span_id
    assert tracing.by_name("a1")["parent_id"] == a.span_id
    assert tracing.by_name("b")["parent_id"] == root.span_id
    assert {tracing.by_name(n)["trace_id"] for n in ("root", "a", "a1", "b")} == {root.trace_id}
    assert other.trace_id != root.trace_id


@pytest.mark.embedded
def test_events_newest_first(tracing: Tracing) -> None:
    with erlang.Span("ev") as span:
        span.event("first", step=1)
        span.event("second")
        span.event("third", step=3, tag="x")
    span.event("after exit: ignored")
    [got] = tracing.spans()
    events = got["events"]
    assert [(e["name"], e["attrs"]) for e in events] == [
        ("third", {"step": 3, "tag": "x"}),
        ("second", {}),
        ("first", {"step": 1}),
    ]
    times = [e["time"] for e in reversed(events)]
    assert got["start_time"] <= times[0] <= times[1] <= times[2] <= got["end_time"]


@pytest.mark.embedded
def test_error_status_and_the_exception_goes_on(tracing: Tracing) -> None:
    with pytest.raises(ValueError, match="boom"), erlang.Span("outer"):
        with erlang.Span("failing"):
            raise ValueError("boom")
    failing, outer = tracing.spans()
    assert failing["status"] == outer["status"] == "error"
    assert failing["end_attrs"] == {"exception": "boom", "exception_type": "ValueError"}


@pytest.mark.embedded
def test_broken_exception_str_does_not_hide_the_exception(tracing: Tracing) -> None:
    class Odd(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    with pytest.raises(Odd), erlang.Span("odd"):
        raise Odd
    [got] = tracing.spans()
    assert got["end_attrs"]["exception_type"] == "Odd"
    assert got["end_attrs"]["exception"].startswith("<")


@pytest.mark.embedded
def test_asyncio_tasks_nest_by_context(tracing: Tracing) -> None:
    async def worker(tag: str) -> None:
        async with erlang.Span("task", tag=tag):
            await asyncio.sleep(0)
            with erlang.Span("step", tag=tag):
                await asyncio.sleep(0.001)
            await asyncio.sleep(0)

    async def main() -> None:
        with erlang.Span("main"):
            await asyncio.gather(*(worker(tag) for tag in "abc"))

    asyncio.run(main())
    spans = tracing.spans()
    assert len(spans) == 7
    assert spans[-1]["name"] == "main"
    tasks = {s["attributes"]["tag"]: s for s in spans if s["name"] == "task"}
    steps = {s["attributes"]["tag"]: s for s in spans if s["name"] == "step"}
    assert {t["parent_id"] for t in tasks.values()} == {spans[-1]["span_id"]}
    for tag in "abc":
        assert steps[tag]["parent_id"] == tasks[tag]["span_id"]
    assert len({s["trace_id"] for s in spans}) == 1


@pytest.mark.embedded
def test_trace_decorator_on_a_function(tracing: Tracing) -> None:
    @erlang.trace()
    def add(a: int, b: int) -> int:
        """Adds."""
        with erlang.Span("inside"):
            return a + b

    assert add(1, 2) == 3
    assert add.__name__ == "add"
    assert add.__doc__ == "Adds."
    assert add.__wrapped__.__name__ == "add"  # type: ignore[attr-defined]
    name = f"{__name__}.test_trace_decorator_on_a_function.<locals>.add"
    assert tracing.names() == ["inside", name]
    assert tracing.by_name("inside")["parent_id"] == tracing.by_name(name)["span_id"]


@pytest.mark.embedded
def test_trace_decorator_on_a_coroutine_function(tracing: Tracing) -> None:
    @erlang.trace("custom.fetch")
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        with erlang.Span("inside"):
            await asyncio.sleep(0)
        return x * 2

    import inspect

    assert inspect.iscoroutinefunction(fetch)
    assert fetch.__name__ == "fetch"
    assert asyncio.run(fetch(21)) == 42
    assert tracing.names() == ["inside", "custom.fetch"]
    outer = tracing.by_name("custom.fetch")
    assert tracing.by_name("inside")["parent_id"] == outer["span_id"]
    assert outer["duration_us"] >= tracing.by_name("inside")["duration_us"]


@pytest.mark.embedded
def test_trace_without_parentheses_and_errors(tracing: Tracing) -> None:
    @erlang.trace
    def fail() -> None:
        raise RuntimeError("bare failed")

    with pytest.raises(RuntimeError, match="bare failed"):
        fail()
    [got] = tracing.spans()
    assert got["name"].endswith(".fail")
    assert got["status"] == "error"
    assert got["end_attrs"]["exception"] == "bare failed"


@pytest.mark.embedded
def test_trace_rejects_a_bad_name() -> None:
    with pytest.raises(TypeError, match="str or None"):
        erlang.trace(3)  # type: ignore[call-overload]


@pytest.mark.embedded
def test_disabled_records_nothing(tracing: Tracing) -> None:
    tracing.enable(False)
    assert not _trace_enabled()
    with erlang.Span("off") as span:
        span.event("ignored")
        with erlang.Span("off.child") as child:
            assert child.parent_id is None
    assert (span.span_id, span.trace_id, span.parent_id) == (None, None, None)
    assert tracing.spans() == []
    tracing.enable(True)
    with erlang.Span("on"):
        pass
    assert tracing.names() == ["on"]


@pytest.mark.embedded
def test_erlang_parent(tracing: Tracing) -> None:
    parent = (2**127 + 5, 2**64 - 1)
    tracing.set_parent(parent)
    try:
        with erlang.Span("root") as root, erlang.Span("child") as child:
            pass
    finally:
        tracing.set_parent(None)
    with erlang.Span("after"):
        pass
    assert (root.trace_id, root.parent_id) == parent
    assert (child.trace_id, child.parent_id) == (parent[0], root.span_id)
    assert tracing.by_name("root")["parent_id"] == parent[1]
    assert tracing.by_name("after")["parent_id"] is None


@pytest.mark.embedded
def test_thread_spans_start_with_no_current_span(tracing: Tracing) -> None:
    def run() -> None:
        with erlang.Span("thread", name=threading.current_thread().name):
            pass

    with erlang.Span("request"):
        thread = threading.Thread(target=run, name="tracing-thread")
        thread.start()
        thread.join()
    assert tracing.names() == ["thread", "request"]
    got = tracing.by_name("thread")
    assert got["parent_id"] is None
    assert got["attributes"] == {"name": "tracing-thread"}


@pytest.mark.embedded
def test_copied_context_carries_the_parent_into_a_thread(tracing: Tracing) -> None:
    def run() -> None:
        with erlang.Span("thread"):
            pass

    with erlang.Span("request") as request:
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(run,))
        thread.start()
        thread.join()
    assert tracing.by_name("thread")["parent_id"] == request.span_id


@pytest.mark.embedded
def test_a_span_closed_in_another_context_is_no_parent(tracing: Tracing) -> None:
    def numbers() -> Iterator[int]:
        with erlang.Span("gen"):
            yield 1
            yield 2

    def finish() -> list[int]:
        return list(gen)

    gen = numbers()
    assert next(gen) == 1
    # Finished in another context: the span cannot restore this one's current span.
    assert contextvars.copy_context().run(finish) == [2]
    with erlang.Span("after") as after:
        pass
    assert after.parent_id is None
    assert tracing.names() == ["gen", "after"]


@pytest.mark.embedded
def test_attributes_without_a_term_are_sent_as_repr(tracing: Tracing) -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing!"

    with erlang.Span("attrs", thing=Thing(), nested={"t": Thing(), "n": None}) as span:
        span.event("ev", thing=Thing())
    [got] = tracing.spans()
    assert got["attributes"] == {"thing": "Thing!", "nested": {"t": "Thing!", "n": None}}
    assert got["events"][0]["attrs"] == {"thing": "Thing!"}


@pytest.mark.embedded
def test_a_span_is_open_once_at_a_time(tracing: Tracing) -> None:
    span = erlang.Span("once")
    with span, pytest.raises(RuntimeError, match="already open"):
        span.__enter__()
    with span:
        pass
    assert tracing.names() == ["once", "once"]


@pytest.mark.embedded
def test_span_checks_its_arguments() -> None:
    name: Any = 1
    with pytest.raises(TypeError, match="span name must be a str"):
        erlang.Span(name)
    with pytest.raises(TypeError, match="event name must be a str"):
        erlang.Span("x").event(name)


GOOD: list[Any] = ["n", 1, 2, None, 0, 1, "ok", {}, {}, []]


@pytest.mark.parametrize(
    ("index", "value", "error"),
    [
        (0, 5, TypeError),
        (1, -1, OverflowError),
        (1, 2**128, OverflowError),
        (2, 2**64, OverflowError),
        (3, -1, OverflowError),
        (6, "fine", ValueError),
        (7, [], TypeError),
        (9, [["e", {}, 1]], TypeError),
        (9, [("e", {})], ValueError),
    ],
)
@pytest.mark.embedded
def test_native_span_checks_its_arguments(
    tracing: Tracing, index: int, value: object, error: type[Exception]
) -> None:
    args = list(GOOD)
    args[index] = value
    with pytest.raises(error):
        _span(*args)
    assert tracing.spans() == []
    _span(*GOOD)
    assert tracing.names() == ["n"]


def test_outside_any_beam_spans_record_nothing() -> None:
    assert not _trace_enabled()
    with erlang.Span("nowhere") as span:
        span.event("e")
    assert span.span_id is None


def test_mock_tracing_follows_the_current_mock() -> None:
    with MockBeam() as outer:
        assert _trace_enabled()
        outer.tracing = False
        assert not _trace_enabled()
        with MockBeam() as inner:
            assert _trace_enabled()
            with erlang.Span("inner"):
                pass
        assert not _trace_enabled()
        with erlang.Span("dropped"):
            pass
        outer.tracing = True
        with erlang.Span("outer"):
            pass
        assert [s["name"] for s in inner.spans] == ["inner"]
        assert [s["name"] for s in outer.spans] == ["outer"]
        outer.clear_spans()
        assert outer.spans == []
    assert not _trace_enabled()
