"""A virtual-time asyncio event loop.

Unmodified asyncio code (the real `client/` among it) runs on this loop, but its clock is
simulated: `loop.time()`, `asyncio.sleep`, `asyncio.timeout`, `asyncio.wait_for` and every timer
read and advance simulated seconds, and nothing waits on the wall clock.

How the clock moves
-------------------

The loop keeps two queues:

    ready    FIFO of callbacks to run now (call_soon, task steps, future callbacks)
    timers   heap of (when, sequence, function, argument), smallest `when` first

    while not stopped:
        run every ready callback, including those they schedule
        if no timers: stop (or report a deadlock if the awaited future is not done)
        pop the earliest timer, set now = its `when`, run it

So the clock jumps straight to the next timer whenever nothing is ready: a simulated hour of
sleeping clients costs no wall time. Timers due at the same simulated time run in the order they
were scheduled (the sequence number breaks ties), and ready callbacks run FIFO, so a run depends
on nothing but its inputs: not on hash order, object identity or the wall clock.

Two kinds of timer share the heap: asyncio's `TimerHandle` (from `call_at` and `call_later`,
cancellable) and the simulator's own events from `schedule_at`, which skip the handle object
because the server model schedules several per request. A `TimerLane` keeps timers that come
in time order (request timeouts of one length) out of the heap until the earliest is due, so
the heap stays as small as the number of sleeping clients and every push and pop stays cheap.

What cannot run in virtual time
-------------------------------

- Real I/O: sockets, pipes, subprocesses, signals and DNS lookups raise `NotImplementedError`.
  A real `aiohttp.ClientSession` therefore cannot run here; the simulator hands the client a
  session backed by the server model instead.
- Threads: `run_in_executor` raises, because work in a thread would finish in wall time.
- Wall-clock reads: code that calls `time.time()`, `time.monotonic()` or `time.sleep()` sees real
  time, and `time.sleep()` blocks the whole simulation. Code must use `loop.time()` and
  `asyncio.sleep()`.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import heapq
import itertools
import logging
import sys
from asyncio import events, futures
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["SimTime", "TimerLane", "VirtualTimeLoop", "SimulationDeadlock"]

SimTime = float
"""Simulated time in seconds since the start of the run."""

T = TypeVar("T")

logger = logging.getLogger("sim.engine")

_CANCELLED_FRACTION_TO_PURGE = 0.5  # rebuild the heap when half its timers are cancelled
_MIN_TIMERS_TO_PURGE = 1024


class TimerLane:
    """Timers scheduled in order of time, which enter the loop's heap one at a time.

    Request timeouts of one length are due in the order they were set, and most are never
    needed because the response comes first. In the heap, each would make every push and pop
    slower until it came due. A lane keeps them in a FIFO and puts only the earliest in the
    heap. That timer enters the heap under the time and sequence number it got when it was
    added, so events run in exactly the order they would have run from the heap.
    `is_stale(argument)` reports that a timer no longer needs to run (its request has
    finished), so the lane drops it without an event.

    A timer added earlier than the lane's latest goes straight into the heap.
    """

    __slots__ = ("_loop", "_entries", "_last", "_is_stale")

    def __init__(self, loop: VirtualTimeLoop, is_stale: Callable[[Any], bool]) -> None:
        self._loop = loop
        self._entries: collections.deque[tuple[float, int, Callable[[Any], None], Any]] = collections.deque()
        self._last = -float("inf")
        self._is_stale = is_stale

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, when: SimTime, function: Callable[[Any], None], argument: Any = None) -> None:
        """Run `function(argument)` at simulated time `when`, unless `argument` is stale by then."""
        loop = self._loop
        if when < loop._now:
            when = loop._now
        entry = (when, next(loop._sequence), function, argument)
        if when < self._last:
            heapq.heappush(loop._timers, entry)
            return
        self._last = when
        entries = self._entries
        entries.append(entry)
        if len(entries) == 1:
            heapq.heappush(loop._timers, (when, entry[1], self._fire, None))

    def _fire(self, _: object) -> None:
        entries = self._entries
        _, _, function, argument = entries.popleft()
        function(argument)

        is_stale = self._is_stale
        while entries and is_stale(entries[0][3]):
            entries.popleft()
        if entries:
            when, sequence, _, _ = entries[0]
            heapq.heappush(self._loop._timers, (when, sequence, self._fire, None))


class SimulationDeadlock(RuntimeError):
    """Raised when the awaited future can never finish: nothing is ready and no timer is left."""


def _run_timer_handle(handle: asyncio.TimerHandle) -> None:
    if not handle._cancelled:
        handle._scheduled = False
        handle._run()


_SET_RESULT_UNLESS_CANCELLED = futures._set_result_unless_cancelled
"""The callback `asyncio.sleep` schedules; `call_later` gives it a shared handle."""


class _SleepHandle(asyncio.TimerHandle):
    """What `call_later` returns for an `asyncio.sleep`: one shared handle whose `cancel()` does
    nothing.

    asyncio.sleep cancels its timer only once its future is done: it woke, or its task was
    cancelled, which cancels the future first. The loop skips a sleep timer whose future is
    done, before the clock moves, so cancelling changes nothing and the sleep needs no handle
    of its own.

    NOTE: code that calls `call_later(delay, futures._set_result_unless_cancelled, future,
    value)` itself, then cancels the timer while the future is pending, still gets the future
    set. `call_at` gives such callers a real handle.
    """

    __slots__ = ()

    def __init__(self) -> None:
        self._when = 0.0
        self._loop = None
        self._callback = None
        self._args = None
        self._cancelled = False
        self._scheduled = False
        self._context = None
        self._source_traceback = None
        self._repr = "<shared sleep handle>"

    def cancel(self) -> None:
        return None


_SLEEP_HANDLE = _SleepHandle()


def _wake_sleep(args: tuple[asyncio.Future[Any], Any]) -> None:
    future, result = args
    future.set_result(result)


class _ReadyHandle(asyncio.Handle):
    """A callback queued with `call_soon`: an `asyncio.Handle` built without asyncio's debug data.

    Every task wake-up and future callback passes through here, several per simulated request,
    so the loop's `call_soon` is this class itself, bound to the loop: creating the handle
    queues it.
    """

    __slots__ = ()

    def __init__(self, loop: VirtualTimeLoop, callback: Callable[..., Any], *args: Any, context: Any = None) -> None:
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._loop = loop
        self._context = contextvars.copy_context() if context is None else context
        self._source_traceback = None
        self._repr = None
        loop._ready.append(self)


class VirtualTimeLoop(asyncio.AbstractEventLoop):
    """An asyncio event loop whose clock is simulated and jumps to the next timer.

    `start` is the clock value at creation, in simulated seconds. `progress` is called with
    the loop every `progress_every` timer events (rounded up to a power of two, so that the
    check is a bit mask) so that a caller can report progress; it must not schedule anything.
    """

    def __init__(
        self,
        start: SimTime = 0.0,
        *,
        progress: Callable[[VirtualTimeLoop], None] | None = None,
        progress_every: int = 65536,
    ) -> None:
        self._now = float(start)
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._timers: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._sequence = itertools.count()
        self._cancelled_timers = 0
        self._stopping = False
        self._running = False
        self._closed = False
        self._debug = False
        self._exception_handler: Callable[..., None] | None = None
        self._task_factory: Callable[..., asyncio.Task[Any]] | None = None
        self._progress = progress
        self._progress_every = 1 << (max(1, int(progress_every)) - 1).bit_length()
        self.events_run = 0
        """Timer events run so far: a measure of simulation work."""
        self._fast_attribute_reads()

    # ----------------------------------------------------------------- clock and scheduling

    def time(self) -> SimTime:
        """Current simulated time in seconds."""
        return self._now

    def _fast_attribute_reads(self) -> None:
        # `time()` and `get_debug()` are called several times per simulated request (asyncio's
        # C futures call get_debug() on creation). Instance attributes holding built-in
        # callables return the value without a Python frame; the methods stay for documentation.
        self.time = functools.partial(getattr, self, "_now")  # type: ignore[method-assign]
        self.get_debug = bool if not self._debug else functools.partial(bool, True)  # type: ignore[method-assign]
        if not self._closed:
            self.call_soon = functools.partial(_ReadyHandle, self)  # type: ignore[method-assign]
            self.create_future = functools.partial(asyncio.Future, loop=self)  # type: ignore[method-assign]

    def schedule_at(self, when: SimTime, function: Callable[[Any], None], argument: Any = None) -> None:
        """Run `function(argument)` at simulated time `when`, with no handle and no context.

        This is the fast path for the simulator's own events. It cannot be cancelled: an event
        that is no longer wanted must check its own state and do nothing. Exceptions propagate
        out of the loop, because a failing model event means the simulation is wrong.
        """
        if when < self._now:
            when = self._now
        heapq.heappush(self._timers, (when, next(self._sequence), function, argument))

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        self._check_closed()
        return _ReadyHandle(self, callback, *args, context=context)

    call_soon_threadsafe = call_soon

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.TimerHandle:
        if callback is _SET_RESULT_UNLESS_CANCELLED and len(args) == 2 and not self._closed:
            # asyncio.sleep(delay), once per simulated poll: the shortest path.
            heapq.heappush(self._timers, (self._now + delay, next(self._sequence), _wake_sleep, args))
            return _SLEEP_HANDLE
        return self.call_at(self._now + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.TimerHandle:
        self._check_closed()
        if when < self._now:
            when = self._now
        handle = events.TimerHandle(when, callback, args, self, context)
        handle._scheduled = True
        heapq.heappush(self._timers, (when, next(self._sequence), _run_timer_handle, handle))
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # Called by TimerHandle.cancel(). Cancelled timers stay in the heap and are skipped when
        # they come due; the heap is rebuilt only when they make up most of it.
        if handle._scheduled:
            self._cancelled_timers += 1
            if self._cancelled_timers > _MIN_TIMERS_TO_PURGE and (
                self._cancelled_timers > _CANCELLED_FRACTION_TO_PURGE * len(self._timers)
            ):
                self._purge_cancelled_timers()

    def _purge_cancelled_timers(self) -> None:
        live = []
        for entry in self._timers:
            handle = entry[3]
            if entry[2] is _run_timer_handle and handle._cancelled:
                handle._scheduled = False
                continue
            live.append(entry)
        heapq.heapify(live)
        self._timers = live
        self._cancelled_timers = 0

    # ----------------------------------------------------------------- futures and tasks

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Any, *, name: str | None = None, context: Any = None) -> asyncio.Task[Any]:
        self._check_closed()
        if self._task_factory is not None:
            if context is None:
                return self._task_factory(self, coro)
            return self._task_factory(self, coro, context=context)
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def set_task_factory(self, factory: Callable[..., asyncio.Task[Any]] | None) -> None:
        self._task_factory = factory

    def get_task_factory(self) -> Callable[..., asyncio.Task[Any]] | None:
        return self._task_factory

    # ----------------------------------------------------------------- running

    def run_until_complete(self, future: Any) -> Any:
        """Run until `future` (a coroutine, task or future) is done and return its result.

        Raises `SimulationDeadlock` if the loop runs out of work first.
        """
        self._check_closed()
        if self._running:
            raise RuntimeError("VirtualTimeLoop is already running")
        new_task = not asyncio.isfuture(future)
        future = asyncio.ensure_future(future, loop=self)
        future.add_done_callback(self._stop_on_done)
        try:
            stopped = self._run()
        finally:
            future.remove_done_callback(self._stop_on_done)
            if new_task and not future.done():
                # Stopped early (Ctrl-C, an error, a deadlock): the task made here will never
                # finish, and the exception the caller gets explains why.
                future._log_destroy_pending = False  # type: ignore[attr-defined]
        if not future.done():
            if stopped:
                raise RuntimeError("Event loop stopped before Future completed.")
            raise SimulationDeadlock(
                f"simulation ran out of events at t={self._now:.6f} s but {future!r} is not done: "
                "every task is waiting for something that no timer will deliver"
            )
        return future.result()

    def _stop_on_done(self, future: asyncio.Future[Any]) -> None:
        self.stop()

    def run_forever(self) -> None:
        """Run until `stop()` is called or no work is left."""
        self._check_closed()
        if self._running:
            raise RuntimeError("VirtualTimeLoop is already running")
        self._run()

    def _run(self) -> bool:
        """Run callbacks and timers; return True if `stop()` ended the run, False if work ran out."""
        old_loop = events._get_running_loop()
        old_hooks = sys.get_asyncgen_hooks()
        events._set_running_loop(self)
        self._running = True
        self._stopping = False

        if self._cancelled_timers:
            # Cancelled while the loop was not running: drop them before the clock moves.
            self._purge_cancelled_timers()
        ready = self._ready
        popleft = ready.popleft
        timers_pop = heapq.heappop
        progress = self._progress
        check_mask = self._progress_every - 1
        count = self.events_run

        try:
            while True:
                # NOTE: ready callbacks run until the queue is empty, including ones they add,
                # before the clock may move; asyncio proper also polls I/O between batches,
                # which has no meaning here.
                while ready:
                    handle = popleft()
                    if not handle._cancelled:
                        try:
                            handle._context.run(handle._callback, *handle._args)
                        except (SystemExit, KeyboardInterrupt):
                            raise
                        except BaseException as exc:
                            self.call_exception_handler({
                                "message": f"exception in callback {handle._callback!r}",
                                "exception": exc,
                                "handle": handle,
                            })
                if self._stopping:
                    return True
                timers = self._timers
                if not timers:
                    return False

                when, _, function, argument = timers_pop(timers)
                # Skipped before the clock moves: a cancelled timer is not an event, and neither
                # is the timer of a sleep whose task was cancelled.
                if function is _wake_sleep:
                    # _wake_sleep, inlined: once per simulated poll.
                    future = argument[0]
                    if future.done():
                        continue
                    self._now = when
                    future.set_result(argument[1])
                else:
                    if function is _run_timer_handle and argument._cancelled:
                        self._cancelled_timers -= 1
                        argument._scheduled = False
                        continue
                    self._now = when
                    function(argument)

                count += 1
                if not count & check_mask:
                    self.events_run = count
                    self._check(progress)
        finally:
            self.events_run = count
            self._running = False
            self._stopping = False
            events._set_running_loop(old_loop)
            sys.set_asyncgen_hooks(*old_hooks)

    def _check(self, progress: Callable[[VirtualTimeLoop], None] | None) -> None:
        """Report progress; called every `progress_every` events."""
        if progress is not None:
            progress(self)

    def stop(self) -> None:
        self._stopping = True

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._running:
            raise RuntimeError("cannot close a running VirtualTimeLoop")
        self._closed = True
        self._ready.clear()
        self._timers.clear()
        # Back to the methods, which refuse new work on a closed loop.
        self.__dict__.pop("call_soon", None)
        self.__dict__.pop("create_future", None)

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("VirtualTimeLoop is closed")

    async def shutdown_asyncgens(self) -> None:
        return None

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        return None

    # ----------------------------------------------------------------- errors and debug

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = bool(enabled)
        self._fast_attribute_reads()

    def get_exception_handler(self) -> Callable[..., None] | None:
        return self._exception_handler

    def set_exception_handler(self, handler: Callable[..., None] | None) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        message = context.get("message", "Unhandled exception in a virtual-time callback")
        exception = context.get("exception")
        logger.error("t=%.6f s: %s", self._now, message, exc_info=exception)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is None:
            self.default_exception_handler(context)
        else:
            self._exception_handler(self, context)

    # ----------------------------------------------------------------- what virtual time cannot do

    def _no_real_io(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "VirtualTimeLoop has no real I/O: sockets, pipes, subprocesses, signals, DNS and "
            "threads would run on the wall clock; use a modelled component instead"
        )

    run_in_executor = _no_real_io
    set_default_executor = _no_real_io
    getaddrinfo = _no_real_io
    getnameinfo = _no_real_io
    create_connection = _no_real_io
    create_server = _no_real_io
    create_datagram_endpoint = _no_real_io
    create_unix_connection = _no_real_io
    create_unix_server = _no_real_io
    connect_accepted_socket = _no_real_io
    sendfile = _no_real_io
    start_tls = _no_real_io
    add_reader = _no_real_io
    remove_reader = _no_real_io
    add_writer = _no_real_io
    remove_writer = _no_real_io
    sock_recv = _no_real_io
    sock_recv_into = _no_real_io
    sock_sendall = _no_real_io
    sock_connect = _no_real_io
    sock_accept = _no_real_io
    sock_sendfile = _no_real_io
    connect_read_pipe = _no_real_io
    connect_write_pipe = _no_real_io
    subprocess_shell = _no_real_io
    subprocess_exec = _no_real_io
    add_signal_handler = _no_real_io
    remove_signal_handler = _no_real_io


def run(main: Any, *, start: SimTime = 0.0) -> Any:
    """Run coroutine `main` on a fresh `VirtualTimeLoop` and return its result.

    The virtual-time counterpart of `asyncio.run`: tasks still pending when `main` returns are
    cancelled and given a chance to clean up, then the loop is closed.
    """
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_remaining_tasks(loop)
        finally:
            loop.close()


def _cancel_remaining_tasks(loop: VirtualTimeLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
