"""Unit tests for `sim.loop.VirtualTimeLoop` and `sim.loop.run`."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sim.loop import SimulationDeadlock, TimerLane, VirtualTimeLoop, run


@pytest.fixture
def loop() -> Iterator[VirtualTimeLoop]:
    loop = VirtualTimeLoop()
    yield loop
    loop.close()


# ----------------------------------------------------------------------------- clock


def test_hour_sleep_costs_no_wall_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        return loop.time() - start

    wall_start = time.perf_counter()
    simulated = run(main())
    wall_elapsed = time.perf_counter() - wall_start

    assert simulated == 3600.0
    assert wall_elapsed < 0.5


def test_run_start_sets_clock() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        before = loop.time()
        await asyncio.sleep(3600)
        return before, loop.time()

    assert run(main(), start=1000.0) == (1000.0, 4600.0)


def test_timeout_fires_at_exact_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1.25)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2.5):
                await asyncio.sleep(10)
        return loop.time()

    assert run(main()) == 3.75


def test_timeout_at_fires_at_deadline() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout_at(loop.time() + 7.5):
                await loop.create_future()
        return loop.time()

    assert run(main(), start=100.0) == 107.5


def test_wait_for_fires_at_exact_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), timeout=4.5)
        return loop.time()

    assert run(main()) == 4.5


def test_wait_for_on_pending_future() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(loop.create_future(), timeout=0.75)
        return loop.time()

    assert run(main()) == 0.75


def test_wait_for_result_before_timeout() -> None:
    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        result = await asyncio.wait_for(asyncio.sleep(1.5, result="done"), timeout=5)
        return result, loop.time()

    assert run(main()) == ("done", 1.5)


# ----------------------------------------------------------------------------- ordering


def test_same_time_timers_fifo(loop: VirtualTimeLoop) -> None:
    order: list[int] = []
    for label in range(100):
        loop.call_at(5.0, order.append, label)

    loop.run_forever()

    assert order == list(range(100))
    assert loop.time() == 5.0


def test_mixed_time_timers_stable(loop: VirtualTimeLoop) -> None:
    rng = random.Random(7)
    entries = [(rng.choice([1.0, 2.0, 3.0]), label) for label in range(300)]
    order: list[int] = []
    for when, label in entries:
        loop.call_at(when, order.append, label)

    loop.run_forever()

    # sorted() is stable, so labels that share a time keep their scheduling order.
    assert order == [label for _, label in sorted(entries, key=lambda entry: entry[0])]


def test_schedule_at_fifo(loop: VirtualTimeLoop) -> None:
    order: list[int] = []
    for label in range(100):
        loop.schedule_at(2.0, order.append, label)

    loop.run_forever()

    assert order == list(range(100))


def test_schedule_at_and_call_at_interleave(loop: VirtualTimeLoop) -> None:
    order: list[str] = []
    for index in range(20):
        loop.schedule_at(4.0, order.append, f"event-{index}")
        loop.call_at(4.0, order.append, f"timer-{index}")

    loop.run_forever()

    expected = [label for index in range(20) for label in (f"event-{index}", f"timer-{index}")]
    assert order == expected


def test_schedule_at_past_runs_now(loop: VirtualTimeLoop) -> None:
    seen: list[float] = []

    def schedule_in_past(_: Any) -> None:
        loop.schedule_at(1.0, lambda _: seen.append(loop.time()))

    loop.schedule_at(10.0, schedule_in_past)
    loop.run_forever()

    assert seen == [10.0]


def test_call_soon_fifo(loop: VirtualTimeLoop) -> None:
    order: list[int] = []
    for label in range(100):
        loop.call_soon(order.append, label)

    loop.run_forever()

    assert order == list(range(100))
    assert loop.time() == 0.0


def test_call_soon_before_due_timer(loop: VirtualTimeLoop) -> None:
    order: list[str] = []
    loop.call_later(0, order.append, "timer")
    loop.call_soon(order.append, "soon")

    loop.run_forever()

    assert order == ["soon", "timer"]


def test_equal_sleeps_wake_in_order() -> None:
    async def main() -> list[int]:
        woken: list[int] = []

        async def sleeper(label: int) -> None:
            await asyncio.sleep(2.0)
            woken.append(label)

        await asyncio.gather(*(sleeper(label) for label in range(50)))
        return woken

    assert run(main()) == list(range(50))


# ----------------------------------------------------------------------------- cancelled timers


def test_cancelled_timer_never_runs(loop: VirtualTimeLoop) -> None:
    ran: list[str] = []
    handle = loop.call_later(1.0, ran.append, "cancelled")
    loop.call_later(2.0, ran.append, "kept")
    handle.cancel()

    loop.run_forever()

    assert ran == ["kept"]


def test_timer_cancelled_by_earlier_timer(loop: VirtualTimeLoop) -> None:
    ran: list[str] = []
    handles: dict[str, asyncio.TimerHandle] = {}

    def first() -> None:
        ran.append("first")
        handles["second"].cancel()

    loop.call_at(5.0, first)
    handles["second"] = loop.call_at(5.0, ran.append, "second")

    loop.run_forever()

    assert ran == ["first"]


def test_cancelled_timer_keeps_clock(loop: VirtualTimeLoop) -> None:
    loop.call_later(1.0, lambda: None)
    loop.call_later(100.0, lambda: None).cancel()

    loop.run_forever()

    # The clock should stop at the last timer that ran, not at one that was cancelled.
    assert loop.time() == 1.0


def test_many_cancelled_timers_purged(loop: VirtualTimeLoop) -> None:
    count = 3000
    order: list[int] = []
    handles = [loop.call_at(100.0 + label % 7, order.append, label) for label in range(count)]
    for label, handle in enumerate(handles):
        if label % 3:
            handle.cancel()

    # The probe reads the private heap to see that the purge removed the cancelled entries.
    heap_sizes: list[int] = []
    loop.call_at(50.0, lambda: heap_sizes.append(len(loop._timers)))

    loop.run_forever()

    kept_labels = [label for label in range(count) if label % 3 == 0]
    assert order == sorted(kept_labels, key=lambda label: 100.0 + label % 7)
    assert heap_sizes == [len(kept_labels)]


def test_cancel_during_run_keeps_order(loop: VirtualTimeLoop) -> None:
    count = 4000
    order: list[int] = []
    handles = [loop.call_at(10.0 + label % 5, order.append, label) for label in range(count)]

    def cancel_odd_labels() -> None:
        for label, handle in enumerate(handles):
            if label % 2:
                handle.cancel()

    loop.call_at(5.0, cancel_odd_labels)
    loop.run_forever()

    kept_labels = [label for label in range(count) if label % 2 == 0]
    assert order == sorted(kept_labels, key=lambda label: 10.0 + label % 5)


# ----------------------------------------------------------------------------- tasks


def test_task_cancel_raises_cancelled() -> None:
    async def main() -> tuple[list[tuple[str, float]], bool, float]:
        loop = asyncio.get_running_loop()
        events: list[tuple[str, float]] = []

        async def worker() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                events.append(("cancelled", loop.time()))
                raise

        task = asyncio.create_task(worker())
        await asyncio.sleep(3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return events, task.cancelled(), loop.time()

    events, cancelled, now = run(main())

    assert events == [("cancelled", 3.0)]
    assert cancelled is True
    assert now == 3.0


def test_cancelled_main_raises_from_run() -> None:
    async def main() -> None:
        asyncio.current_task().cancel()
        await asyncio.sleep(1)

    with pytest.raises(asyncio.CancelledError):
        run(main())


def test_gather_returns_in_order() -> None:
    async def main() -> tuple[list[str], float]:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            asyncio.sleep(3, result="a"),
            asyncio.sleep(1, result="b"),
            asyncio.sleep(2, result="c"),
        )
        return results, loop.time()

    assert run(main()) == (["a", "b", "c"], 3.0)


def test_main_exception_propagates() -> None:
    async def main() -> None:
        await asyncio.sleep(1)
        raise ValueError("main failed")

    with pytest.raises(ValueError, match="main failed"):
        run(main())


def test_task_exception_propagates() -> None:
    failed_at: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def failing() -> None:
            await asyncio.sleep(2)
            failed_at.append(loop.time())
            raise KeyError("task failed")

        await asyncio.gather(asyncio.sleep(5), failing())

    with pytest.raises(KeyError, match="task failed"):
        run(main())
    assert failed_at == [2.0]


def test_run_cancels_leftover_tasks() -> None:
    cleanup: list[str] = []

    async def background() -> None:
        try:
            await asyncio.sleep(1000)
        finally:
            cleanup.append("cancelled")

    async def main() -> str:
        asyncio.create_task(background())
        await asyncio.sleep(1)
        return "done"

    assert run(main()) == "done"
    assert cleanup == ["cancelled"]


# ----------------------------------------------------------------------------- deadlock


def test_unresolved_future_deadlocks() -> None:
    async def main() -> None:
        await asyncio.sleep(2.5)
        await asyncio.get_running_loop().create_future()

    with pytest.raises(SimulationDeadlock) as excinfo:
        run(main())

    message = str(excinfo.value)
    assert "ran out of events" in message
    assert "t=2.500000 s" in message
    assert "is not done" in message


def test_deadlock_time_ignores_cancelled_timer() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(100.0, lambda: None).cancel()
        await asyncio.sleep(1.0)
        await loop.create_future()

    # The last event that ran was the wake-up at t=1, because the timer at t=100 was cancelled.
    with pytest.raises(SimulationDeadlock, match=r"t=1\.000000 s"):
        run(main())


def test_deadlock_is_runtime_error(loop: VirtualTimeLoop) -> None:
    with pytest.raises(RuntimeError):
        loop.run_until_complete(loop.create_future())


# ----------------------------------------------------------------------------- real I/O


def _create_connection(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.create_connection(asyncio.Protocol, "127.0.0.1", 9)


def _run_in_executor(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.run_in_executor(None, sum, [1, 2])


def _getaddrinfo(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.getaddrinfo("127.0.0.1", 9)


def _open_connection(loop: asyncio.AbstractEventLoop) -> Any:
    return asyncio.open_connection("127.0.0.1", 9)


def _to_thread(loop: asyncio.AbstractEventLoop) -> Any:
    return asyncio.to_thread(sum, [1, 2])


def _subprocess_exec(loop: asyncio.AbstractEventLoop) -> Any:
    return asyncio.create_subprocess_exec("true")


def _add_signal_handler(loop: asyncio.AbstractEventLoop) -> Any:
    return loop.add_signal_handler(signal.SIGUSR1, lambda: None)


@pytest.mark.parametrize(
    "start_io",
    [
        _create_connection,
        _run_in_executor,
        _getaddrinfo,
        _open_connection,
        _to_thread,
        _subprocess_exec,
        _add_signal_handler,
    ],
)
def test_real_io_not_implemented(start_io: Callable[[asyncio.AbstractEventLoop], Any]) -> None:
    async def main() -> str:
        # The call may raise at once or return an awaitable that raises, so both are covered.
        with pytest.raises(NotImplementedError) as excinfo:
            awaitable = start_io(asyncio.get_running_loop())
            if awaitable is not None:
                await awaitable
        return str(excinfo.value)

    assert "no real I/O" in run(main())


# ----------------------------------------------------------------------------- determinism


def run_traced_scenario(seed: int) -> list[tuple[float, int, int, float]]:
    """Run 200 tasks that sleep for random times and return what each saw, in order.

    All tasks share one generator, so the trace depends on the order in which they wake.
    Durations come from a small set, so many tasks wake at the same simulated time.
    """

    async def main() -> list[tuple[float, int, int, float]]:
        loop = asyncio.get_running_loop()
        rng = random.Random(seed)
        trace: list[tuple[float, int, int, float]] = []

        async def client(ident: int) -> None:
            for step in range(20):
                await asyncio.sleep(rng.choice([0.0, 0.5, 1.0, 1.5, 2.0]))
                trace.append((loop.time(), ident, step, rng.random()))
            try:
                async with asyncio.timeout(rng.choice([0.5, 1.0])):
                    await asyncio.sleep(rng.choice([0.5, 1.0]))
            except TimeoutError:
                trace.append((loop.time(), ident, -1, 0.0))

        await asyncio.gather(*(client(ident) for ident in range(200)))
        return trace

    return run(main())


def test_seeded_runs_identical() -> None:
    first = run_traced_scenario(42)
    second = run_traced_scenario(42)

    assert len(first) >= 200 * 20
    assert first == second


def test_other_seed_differs() -> None:
    assert run_traced_scenario(42) != run_traced_scenario(43)


# ----------------------------------------------------------------------------- fast paths


def test_timer_lane_matches_heap_order(loop: VirtualTimeLoop) -> None:
    # Lane timers and heap timers interleave, with ties at equal times, exactly as if all were
    # in the heap: by time, then by the order they were scheduled.
    lane = TimerLane(loop, lambda _: False)
    rng = random.Random(5)
    expected: list[tuple[float, int]] = []
    order: list[int] = []
    when = 0.0
    for label in range(400):
        if rng.random() < 0.5:
            when += rng.choice([0.0, 0.5, 1.0])
            lane.add(when, order.append, label)
            expected.append((when, label))
        else:
            other = rng.choice([0.0, 0.5, 1.0, 2.0]) + when
            loop.schedule_at(other, order.append, label)
            expected.append((other, label))

    loop.run_forever()

    assert order == [label for _, label in sorted(expected)]


def test_timer_lane_out_of_order_goes_to_heap(loop: VirtualTimeLoop) -> None:
    lane = TimerLane(loop, lambda _: False)
    order: list[tuple[float, str]] = []
    lane.add(5.0, lambda name: order.append((loop.time(), name)), "late")
    lane.add(2.0, lambda name: order.append((loop.time(), name)), "early")
    loop.run_forever()
    assert order == [(2.0, "early"), (5.0, "late")]


def test_timer_lane_drops_stale_timers_without_event(loop: VirtualTimeLoop) -> None:
    answered = {1, 2}
    lane = TimerLane(loop, lambda label: label in answered)
    fired: list[int] = []
    for label in range(4):
        lane.add(10.0 + label, fired.append, label)
    loop.run_forever()
    # Timer 0 was already in the heap when it went stale; 1 and 2 were dropped unseen.
    assert fired == [0, 3]
    assert loop.events_run == 2
    assert len(lane) == 0


def test_cancelled_sleep_keeps_clock() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        sleeper = asyncio.ensure_future(asyncio.sleep(100.0))
        await asyncio.sleep(1.0)
        sleeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeper
        return loop.time()

    loop = VirtualTimeLoop()
    try:
        assert loop.run_until_complete(main()) == 1.0
        # The cancelled sleep's timer is skipped without moving the clock to 100 s.
        loop.run_forever()
        assert loop.time() == 1.0
    finally:
        loop.close()


def test_call_soon_on_closed_loop_raises() -> None:
    loop = VirtualTimeLoop()
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)


def test_fast_reads_follow_clock_and_debug(loop: VirtualTimeLoop) -> None:
    loop.schedule_at(2.5, lambda _: None)
    loop.run_forever()
    assert loop.time() == 2.5
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
