"""Python's half of examples/shared_state.escript: reads and counters in the shared state."""

from __future__ import annotations

import threading

import erlang


def describe() -> str:
    """Reads what Erlang stored."""
    config = erlang.state_get("config")
    return f"{config['service']} v{config['version']} with {len(config['features'])} features"


def bump(key: str, threads: int, times: int) -> int:
    """``times`` increments of ``key`` from each of ``threads`` Python threads; returns the
    largest value any increment saw."""
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        last = 0
        for _ in range(times):
            last = erlang.state_incr(key)
        with lock:
            seen.append(last)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return max(seen)


def count_on_a_text() -> str:
    """Counting on a value that is not an integer fails in Erlang, and Python sees why."""
    erlang.state_set("name", "erlang_python")
    try:
        erlang.state_incr("name")
    except erlang.ErlangError as e:
        return f"ErlangError {e.erlang_class}: {e.reason}"
    return "no error"
