"""CPython's own asyncio tests (``test.test_asyncio``) run against ``erlang.ErlangEventLoop``.

The loop-generic test classes of each module are run with every loop they make being an
``ErlangEventLoop``: the classes that make their loop with ``create_event_loop()`` or
``new_loop()`` are subclassed to return one, and the others make theirs through asyncio's
policy, which is ``erlang.ErlangEventLoopPolicy`` for the run. Every loop created during a
module is counted by class, so a test that made a loop of its own shows in the report.

Two adaptations, both only off the main thread (always inside the BEAM): the tests that install
``asyncio.SafeChildWatcher``, which needs a ``SIGCHLD`` handler and so the main thread, get
asyncio's ``ThreadedChildWatcher`` instead (asyncio's own watcher for loops off the main thread);
and garbage left by earlier code is collected before each module, so that the tests counting
``ResourceWarning``s at a ``gc.collect()`` count their own.

Inside the BEAM, ``tests/erlang/py_asyncio_conformance_SUITE.erl`` calls :func:`run` on an
executor (``make test-asyncio``); ``python tests/python/asyncio_conformance.py`` runs it in
plain Python (add ``--default-loop`` to run the same tests on asyncio's own loop, for
comparison). The tests that cannot pass inside the BEAM, and why, are :data:`EXPECTED_FAILURES`
(docs/asyncio.md, "Conformance").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import io
import sys
import threading
import time
import unittest
from collections import Counter
from typing import Any

# Module -> the loop-generic test classes run from it (those that exist on this Python). The
# others are asyncio's unit tests of its own classes (mocked selectors, proactor, Windows) or
# of other loops, not loop-generic.
CLASSES: dict[str, list[str]] = {
    "test_events": ["EPollEventLoopTests"],
    "test_sock_lowlevel": ["EPollEventLoopTests"],
    "test_sendfile": ["EPollEventLoopTests"],
    "test_server": ["SelectorStartServerTests", "TestServer2"],
    "test_streams": ["StreamTests"],
    "test_ssl": ["TestSSL"],
    "test_sslproto": ["SelectorStartTLSTests"],
    "test_subprocess": ["SubprocessThreadedWatcherTests", "SubprocessPidfdWatcherTests"],
}

_SIGNALS_OFF_MAIN = (
    "add_signal_handler() needs the main thread, where no Python code runs inside the BEAM "
    "(the VM owns the signals): it raises RuntimeError there, saying so"
)
_TEST_SETS_SIGNAL = (
    "the test itself calls signal.signal() (to give the child a default SIGHUP), which Python "
    "allows on the main thread only"
)

# Test id (without the module) -> why it cannot pass inside the BEAM, and text its traceback
# must contain (a failure for another reason is not expected). They pass on the main thread.
EXPECTED_FAILURES: dict[str, tuple[str, str]] = {
    "EPollEventLoopTests.test_add_signal_handler": (_SIGNALS_OFF_MAIN, "main thread"),
    "EPollEventLoopTests.test_signal_handling_args": (_SIGNALS_OFF_MAIN, "main thread"),
    "EPollEventLoopTests.test_signal_handling_while_selecting": (_SIGNALS_OFF_MAIN, "main thread"),
    "EPollEventLoopTests.test_subprocess_send_signal": (_TEST_SETS_SIGNAL, "main thread"),
    "SubprocessThreadedWatcherTests.test_send_signal": (_TEST_SETS_SIGNAL, "main thread"),
    "SubprocessPidfdWatcherTests.test_send_signal": (_TEST_SETS_SIGNAL, "main thread"),
}


def _loop_classes(module: Any, names: list[str], factory: Any) -> list[type]:
    """The classes of ``module`` named ``names`` that exist, each making its loops with
    ``factory`` where it has a method for that."""
    classes = []
    for name in names:
        cls = getattr(module, name, None)
        if cls is None:
            continue
        overrides: dict[str, Any] = {"__module__": module.__name__, "__qualname__": name}
        for method in ("create_event_loop", "new_loop"):
            if hasattr(cls, method):
                overrides[method] = lambda self: factory()
        classes.append(type(name, (cls,), overrides))
    return classes


@contextlib.contextmanager
def _counting_loops(counts: Counter[str]) -> Any:
    """Counts the event loops created, by class name."""
    base = asyncio.BaseEventLoop
    original = base.__init__

    def init(self: asyncio.BaseEventLoop, *args: Any, **kwargs: Any) -> None:
        counts[type(self).__name__] += 1
        original(self, *args, **kwargs)

    base.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        base.__init__ = original  # type: ignore[method-assign]


@contextlib.contextmanager
def _off_main_thread_watcher() -> Any:
    """``asyncio.SafeChildWatcher`` is ``asyncio.ThreadedChildWatcher`` off the main thread."""
    if threading.current_thread() is threading.main_thread() or sys.version_info >= (3, 14):
        yield
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        safe = asyncio.SafeChildWatcher
        asyncio.SafeChildWatcher = asyncio.ThreadedChildWatcher  # type: ignore[misc]
    try:
        yield
    finally:
        asyncio.SafeChildWatcher = safe  # type: ignore[misc]


def _policy(default_loop: bool) -> asyncio.AbstractEventLoopPolicy:
    if default_loop:
        return asyncio.DefaultEventLoopPolicy()
    import erlang

    return erlang.ErlangEventLoopPolicy()


def run_module(name: str, default_loop: bool = False) -> dict[str, Any]:
    """Runs the loop-generic classes of ``test.test_asyncio.<name>``; a report of the run."""
    import erlang

    module = importlib.import_module(f"test.test_asyncio.{name}")
    factory = asyncio.SelectorEventLoop if default_loop else erlang.ErlangEventLoop
    classes = _loop_classes(module, CLASSES[name], factory)
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(cls) for cls in classes)
    counts: Counter[str] = Counter()
    out = io.StringIO()
    saved = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(_policy(default_loop))
    gc.collect()
    started = time.monotonic()
    try:
        with _counting_loops(counts), _off_main_thread_watcher():
            result = unittest.TextTestRunner(stream=out, verbosity=0).run(suite)
    finally:
        asyncio.set_event_loop_policy(saved)
    failed = [(_short_id(test), text) for test, text in result.failures + result.errors]
    return {
        "module": name,
        "classes": [cls.__name__ for cls in classes],
        "run": result.testsRun,
        "passed": result.testsRun
        - len(failed)
        - len(result.skipped)
        - len(result.expectedFailures),
        "failed": failed,
        "skipped": [(_short_id(test), reason) for test, reason in result.skipped],
        "expected_failures": len(result.expectedFailures),
        "unexpected_successes": [_short_id(test) for test in result.unexpectedSuccesses],
        "loops": dict(counts),
        "seconds": round(time.monotonic() - started, 1),
    }


def _short_id(test: unittest.TestCase) -> str:
    """``Class.test_name``: the test's id without its module."""
    return ".".join(test.id().split(".")[-2:])


def run(modules: list[str] | None = None, default_loop: bool = False) -> list[dict[str, Any]]:
    """Runs the modules (default: every module of :data:`CLASSES`) one after the other, with
    their output captured; a report per module (see :func:`run_module`)."""
    reports = []
    for name in modules or list(CLASSES):
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            reports.append(run_module(name, default_loop))
    return reports


def unexpected(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The failures of ``report`` that :data:`EXPECTED_FAILURES` does not explain."""
    return [
        (test, text)
        for test, text in report["failed"]
        if test not in EXPECTED_FAILURES or EXPECTED_FAILURES[test][1] not in text
    ]


def summary(reports: list[dict[str, Any]]) -> str:
    """One line per module: passed, failed (expected ones apart), skipped, loops made."""
    lines = []
    for r in reports:
        expected = len(r["failed"]) - len(unexpected(r))
        lines.append(
            f"{r['module']}: {r['run']} run, {r['passed']} passed, "
            f"{len(r['failed']) - expected} failed, {expected} expected failures, "
            f"{len(r['skipped'])} skipped, loops {r['loops']}, {r['seconds']} s"
        )
    return "\n".join(lines)


def _main(argv: list[str]) -> int:
    default_loop = "--default-loop" in argv
    modules = [a for a in argv if not a.startswith("--")] or None
    reports = run(modules, default_loop)
    print(f"Python {sys.version.split()[0]}, thread {threading.current_thread().name}")
    print(summary(reports))
    for r in reports:
        for test, reason in r["skipped"]:
            print(f"  skipped {r['module']}.{test}: {reason}")
        for test, text in r["failed"]:
            print(f"  FAILED {r['module']}.{test}:\n{text}")
    return 1 if any(unexpected(r) for r in reports) else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
