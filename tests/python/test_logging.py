"""The pure-Python half of logging: record formatting, metadata, the native threshold and
``setup_logging``. The record's way into Erlang is tested by tests/erlang/py_logging_SUITE.erl.
"""

import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

import erlang
from erlang import _logging
from erlang._native import _log, _log_threshold
from erlang.testing import MockBeam

Sent = list[tuple[int, str, str, dict[str, object]]]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    """What the handler hands to ``_log``, with the native threshold at 0 meanwhile."""
    records: Sent = []
    monkeypatch.setattr(_logging, "_log", lambda *args: records.append(args))
    before = _log_threshold()
    _log_threshold(0)
    yield records
    _log_threshold(before)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own, not propagating to the root logger."""
    log = logging.getLogger("test_logging.own")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


@pytest.mark.embedded
def test_names_are_exported_lazily() -> None:
    assert erlang.ErlangHandler is _logging.ErlangHandler
    assert erlang.setup_logging is _logging.setup_logging
    assert {"ErlangHandler", "setup_logging"} <= set(erlang.__all__)


def test_import_erlang_does_not_import_logging() -> None:
    code = "import sys, erlang; print('logging' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.embedded
def test_emit_formats_and_sends(sent: Sent, logger: logging.Logger) -> None:
    logger.addHandler(_logging.ErlangHandler(fmt="%(levelname)s:%(name)s:%(message)s"))
    logger.warning("hello %s", "world")
    [(level, name, message, meta)] = sent
    assert (level, name, message) == (
        30,
        "test_logging.own",
        "WARNING:test_logging.own:hello world",
    )
    assert meta["funcName"] == "test_emit_formats_and_sends"
    assert meta["module"] == "test_logging"
    assert isinstance(meta["lineno"], int)
    assert isinstance(meta["thread"], int)
    assert "extra" not in meta
    assert "exc_text" not in meta


@pytest.mark.embedded
def test_default_format_is_the_message(sent: Sent, logger: logging.Logger) -> None:
    logger.addHandler(_logging.ErlangHandler())
    logger.info("just %d", 1)
    assert sent[0][2] == "just 1"


@pytest.mark.embedded
def test_extra_fields_convertible_or_repr(sent: Sent, logger: logging.Logger) -> None:
    logger.addHandler(_logging.ErlangHandler())
    marker = object()
    logger.info("x", extra={"user": "bob", "n": 3, "obj": marker, "items": [1, "a"]})
    extra = sent[0][3]["extra"]
    assert extra == {"user": "bob", "n": 3, "obj": repr(marker), "items": [1, "a"]}


@pytest.mark.embedded
def test_exception_text(sent: Sent, logger: logging.Logger) -> None:
    logger.addHandler(_logging.ErlangHandler())
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("failed")
    [(level, _, message, meta)] = sent
    assert level == logging.ERROR
    assert message.startswith("failed\nTraceback")
    assert "ZeroDivisionError: division by zero" in str(meta["exc_text"])


@pytest.mark.embedded
def test_native_threshold_filters_before_formatting(sent: Sent, logger: logging.Logger) -> None:
    logger.addHandler(_logging.ErlangHandler())
    _log_threshold(logging.WARNING)
    logger.info("dropped")
    logger.error("kept")
    assert [m for _, _, m, _ in sent] == ["kept"]


@pytest.mark.embedded
def test_emit_never_raises(
    monkeypatch: pytest.MonkeyPatch, sent: Sent, logger: logging.Logger
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("sink down")

    monkeypatch.setattr(_logging, "_log", broken)
    monkeypatch.setattr(logging, "raiseExceptions", False)
    logger.addHandler(_logging.ErlangHandler())
    logger.error("not raised")


@pytest.mark.embedded
def test_setup_logging_installs_one_handler(sent: Sent) -> None:
    root = logging.getLogger()
    level = root.level
    try:
        first = erlang.setup_logging(logging.INFO)
        second = erlang.setup_logging(logging.WARNING, "%(message)s!")
        mine = [h for h in root.handlers if isinstance(h, _logging.ErlangHandler)]
        assert mine == [second]
        assert first not in root.handlers
        assert root.level == logging.WARNING
        assert _log_threshold() == logging.WARNING
    finally:
        for handler in [h for h in root.handlers if isinstance(h, _logging.ErlangHandler)]:
            root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("20", "n", "m", {}), "'str' object cannot be interpreted as an integer"),
        ((20, 1, "m", {}), "'int' object"),
        ((20, "n", "m", []), "'list' object"),
    ],
)
@pytest.mark.embedded
def test_log_checks_its_arguments(args: tuple[object, ...], match: str) -> None:
    before = _log_threshold()
    _log_threshold(0)
    try:
        with pytest.raises(TypeError, match=match):
            _log(*args)  # type: ignore[arg-type]
    finally:
        _log_threshold(before)


def test_mock_collects_forwarded_records(beam: MockBeam) -> None:
    """Under the mocked BEAM, forwarded records land in beam.log_records with their metadata."""
    handler = erlang.setup_logging(logging.INFO)
    try:
        log = logging.getLogger("mock.records")
        log.debug("dropped below the threshold")
        log.warning("disk %s full", "d1", extra={"disk": "d1"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
    records = [r for r in beam.log_records if r.logger == "mock.records"]
    assert [r.erlang_level for r in records] == ["warning", "error"]
    assert records[0].message == "disk d1 full"
    assert records[1].message.startswith("failed")
    assert records[0].level == logging.WARNING
    assert records[0].meta["funcName"] == "test_mock_collects_forwarded_records"
    assert "ValueError: boom" in records[1].meta["exc_text"]


def test_records_outside_a_mock_are_dropped() -> None:
    """Without the BEAM or a mock, forwarding a record neither raises nor blocks."""
    handler = erlang.setup_logging(logging.INFO)
    try:
        logging.getLogger("no.mock").error("nowhere to go")
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.mark.skipif(
    "erlang._native" in sys.builtin_module_names,
    reason="inside the BEAM, Rust diagnostics go to OTP logger (py_logging_SUITE)",
)
def test_rust_diagnostics_reach_python_logging(caplog: pytest.LogCaptureFixture) -> None:
    before = _log_threshold()
    with caplog.at_level(logging.DEBUG, logger="erlang_python_core"):
        _log_threshold(before + 7)
        _log_threshold(before)
    messages = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert (
        "erlang_python_core.log",
        logging.DEBUG,
        f"native threshold of Python log records: {before} -> {before + 7}",
    ) in messages
