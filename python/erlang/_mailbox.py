"""``erlang.open_mailbox()``: a mailbox a coroutine awaits, with the pid of a real Erlang process.

The mailbox's process (``py_mailbox``, spawned by erlang_python's router) hands each message it
receives to the mailbox's inbox and signals an eventfd that the coroutine's event loop watches
(the inbox owns it); the loop's thread then converts the messages (``MailboxInbox.drain``), so
a message crosses one thread on its way to the coroutine. Under the mocked BEAM the inbox is
the mock's (``MockBeam.deliver`` puts messages in it); the Mailbox is the same. Imported on
first use of ``erlang.open_mailbox`` (``asyncio`` is too heavy for ``import erlang``).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from types import TracebackType
from typing import Any, Protocol, Self

from erlang import _native


class MailboxClosedError(Exception):
    """Raised by :meth:`Mailbox.receive` once the mailbox is closed: by :meth:`Mailbox.close`,
    by its event loop closing, or by its Erlang process ending (killed, or exiting with a
    link). ``reason`` is ``'closed'`` or the process's exit reason, as Erlang prints it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the mailbox is closed: {reason}")
        self.reason = reason


class _Inbox(Protocol):
    # The fd stays open as long as the inbox object lives (also after close()).
    def fileno(self) -> int: ...

    def drain(self) -> tuple[list[tuple[bool, Any]], _native.Pid | None, str | None]: ...

    def close(self) -> bool: ...


class Mailbox:
    """The mailbox of an Erlang process whose messages a coroutine awaits (see
    :func:`open_mailbox`). Use it on the event loop it was opened on."""

    def __init__(self, inbox: _Inbox, loop: asyncio.AbstractEventLoop) -> None:
        """Use :func:`open_mailbox`."""
        self._inbox = inbox
        self._loop = loop
        self._fd = inbox.fileno()  # the inbox's: watched, never closed here
        self._messages: deque[tuple[bool, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._pid: _native.Pid | None = None
        self._attached: asyncio.Future[None] = loop.create_future()
        self._closed: str | None = None  # why, once closed
        self._by_close = False
        # The loop holds the mailbox weakly: one forgotten without close() is collected, and
        # then its process ends and its fd closes.
        loop.add_reader(self._fd, _on_readable, weakref.ref(self), inbox)
        self._finalizer = weakref.finalize(self, _release, inbox, loop, self._fd)

    @property
    def pid(self) -> _native.Pid:
        """The pid of the mailbox's Erlang process: send to it, link to it, monitor it."""
        if self._pid is None:
            raise RuntimeError("the mailbox's process is not started yet")
        return self._pid

    @property
    def closed(self) -> bool:
        """True once the mailbox is closed (see :class:`MailboxClosedError`)."""
        return self._closed is not None

    def _wake(self) -> None:
        messages, pid, down = self._inbox.drain()  # also resets the eventfd
        if pid is not None and self._pid is None:
            self._pid = pid
        self._messages.extend(messages)
        if down is not None and self._closed is None:
            self._shut(down)
        if not self._attached.done() and (self._pid is not None or self._closed is not None):
            self._attached.set_result(None)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _shut(self, reason: str) -> None:
        """Closes everything but the messages already received."""
        self._closed = reason
        self._finalizer()

    async def receive(self, timeout: float | None = None) -> Any:
        """The next message, converted as a call's argument is; waits up to ``timeout``
        seconds (None: without limit), then raises ``TimeoutError``. Raises
        :class:`MailboxClosedError` once the mailbox is closed and its received messages are
        taken, ``RuntimeError`` when another coroutine is already receiving."""
        while not self._messages:
            if self._closed is not None:
                raise MailboxClosedError(self._closed)
            if self._waiter is not None:
                raise RuntimeError("another coroutine is already receiving from this mailbox")
            self._waiter = self._loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            finally:
                self._waiter = None
        ok, value = self._messages.popleft()
        if not ok:
            raise value
        return value

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        """The next message; the iteration ends when :meth:`close` closed the mailbox (a
        process that ended otherwise raises :class:`MailboxClosedError`)."""
        try:
            return await self.receive()
        except MailboxClosedError:
            if self._by_close:
                raise StopAsyncIteration from None
            raise

    def close(self) -> None:
        """Closes the mailbox: its process ends normally, later messages are dropped, and a
        pending :meth:`receive` raises :class:`MailboxClosedError` (an ``async for`` ends).
        Nothing happens the second time."""
        if self._closed is not None:
            return
        self._by_close = True
        self._messages.clear()
        self._shut("closed")
        if not self._attached.done():
            self._attached.set_result(None)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"closed ({self._closed})" if self._closed is not None else "open"
        return f"<erlang.Mailbox {self._pid!r} {state}, {len(self._messages)} waiting>"


def _on_readable(mailbox: weakref.ref[Mailbox], inbox: _Inbox) -> None:
    """The loop's reader of a mailbox's fd."""
    alive = mailbox()
    if alive is not None:
        alive._wake()
    else:  # collected, its reader not removed yet: nobody wants what came
        inbox.drain()


def _release(inbox: _Inbox, loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Closes a mailbox's inbox (its process ends) and stops watching its fd: at close(), or
    when a forgotten mailbox is collected (on any thread)."""
    inbox.close()
    if loop.is_closed():
        return
    if getattr(loop, "_thread_id", None) in (None, threading.get_ident()):
        loop.remove_reader(fd)
    else:
        try:
            # The callback holds the inbox, and so its fd, until the reader is gone.
            loop.call_soon_threadsafe(_unwatch, loop, fd, inbox)
        except RuntimeError:
            pass  # the loop closed meanwhile


def _unwatch(loop: asyncio.AbstractEventLoop, fd: int, inbox: _Inbox) -> None:
    loop.remove_reader(fd)


async def open_mailbox(timeout: float = 30.0) -> Mailbox:
    """A new :class:`Mailbox` on the running event loop, its Erlang process started: Erlang
    code sends to ``mailbox.pid`` with ``Pid ! Message``. Raises ``erlang.NotInBeamError``
    outside the BEAM with no mocked BEAM active, ``erlang.ErlangError`` (``not_started``)
    inside the BEAM while the application is stopped, and :class:`MailboxClosedError` when no
    process was started within ``timeout`` seconds (erlang_python's router did not answer)."""
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    loop = asyncio.get_running_loop()
    mailbox = Mailbox(_native._mailbox_open(), loop)
    from erlang._loop import ErlangEventLoop

    if isinstance(loop, ErlangEventLoop):
        loop._mailboxes.add(mailbox)
    try:
        await asyncio.wait_for(asyncio.shield(mailbox._attached), timeout)
    except TimeoutError:
        mailbox.close()
        raise MailboxClosedError(
            f"no mailbox process was started within {timeout:g} s "
            "(erlang_python's router did not answer)"
        ) from None
    except BaseException:
        mailbox.close()
        raise
    if mailbox._pid is None:
        raise MailboxClosedError(mailbox._closed or "closed")
    return mailbox


__all__ = ["Mailbox", "MailboxClosedError", "open_mailbox"]
