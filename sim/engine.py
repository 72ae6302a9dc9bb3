"""The simulation run: virtual clients running the real `TranslationClient` on virtual time.

`simulate(config)` builds a `VirtualTimeLoop` and a server model, then starts each virtual
client at its arrival time: a client coroutine (by default the real `TranslationClient`) with its
own `SimSession` and random stream. The loop runs until every client has finished. If
`run.duration` ends first, the clients still running are cancelled and their jobs recorded as
unfinished.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sim.clients import ClientContext, ClientCoroutine
from sim.config import Config
from sim.loop import VirtualTimeLoop
from sim.recorder import Recorder
from sim.plugins import Plugins, resolve
from sim.server import ServerModel
from sim.session import SIM_BASE_URL, SimSession
from sim.streams import Streams
from sim.workload import start_times

__all__ = ["Progress", "SimulationData", "simulate"]

logger = logging.getLogger("sim.engine")

_EVENTS_PER_CHECK = 16384
"""Timer events between progress reports."""
_CHECKS_PER_COLLECTION = 64
"""Progress checks (about a million events) between collections of reference cycles."""

Progress = Callable[[float, int, int], None]
"""Called as `progress(simulated_now, clients_done, clients_total)` during a run."""


@dataclass(frozen=True)
class SimulationData:
    """Everything a run recorded, before it is turned into tables."""

    config: Config
    recorder: Recorder
    server: ServerModel
    clients_started: int
    arrivals_dropped: int
    """Arrivals a `stages` schedule brought past the `workload.clients` ceiling, not started."""
    end_time: float
    """Simulated time when the run ended, in seconds."""
    wall_seconds: float
    """Wall-clock time the run took, in seconds."""
    events: int
    """Timer events the loop ran."""


def simulate(
    config: Config,
    *,
    progress: Progress | None = None,
    client_log_level: int | None = logging.ERROR,
    plugins: Plugins | None = None,
    search: Path | None = None,
) -> SimulationData:
    """Run one simulation of `config` and return what it recorded.

    `plugins` are the resolved client coroutine and server model; by default they are resolved
    from the config, trying folder `search` first for dotted paths. While the run lasts, the
    `client` logger's level is raised to `client_log_level` (None leaves it alone), because
    thousands of virtual clients each log every retry and the tables hold the same facts.
    """
    if plugins is None:
        plugins = resolve(config, search)
    client_logger = logging.getLogger("client")
    saved_level = client_logger.level
    if client_log_level is not None:
        client_logger.setLevel(max(client_log_level, client_logger.getEffectiveLevel()))
    try:
        return _simulate(config, progress, plugins)
    finally:
        client_logger.setLevel(saved_level)


def _simulate(config: Config, progress: Progress | None, plugins: Plugins) -> SimulationData:
    wall_start = time.perf_counter()
    streams = Streams(config.run.seed)
    recorder = Recorder()
    run = _Run(config, streams, recorder, progress, plugins.client)
    loop = VirtualTimeLoop(progress=run.housekeeping, progress_every=_EVENTS_PER_CHECK)
    server = plugins.server(loop, config.server, streams.server(), recorder)
    run.server = server
    # The cyclic garbage collector would run thousands of times, each time walking every live
    # task, future and frame, and find almost nothing: the run's objects are freed by reference
    # counting. It is paused for the run and run by hand every `_CHECKS_PER_COLLECTION` checks,
    # so that reference cycles from a client's own code (exceptions kept with their frames)
    # still cannot grow without bound.
    collecting = gc.isenabled()
    gc.disable()
    try:
        loop.run_until_complete(run.main(loop))
    except BaseException:
        run.discard()
        raise
    finally:
        loop.close()
        if collecting:
            gc.enable()
    wall_seconds = time.perf_counter() - wall_start
    logger.info("simulated %.1f s with %d clients in %.2f s of wall time",
                loop.time(), run.started, wall_seconds)
    return SimulationData(
        config=config,
        recorder=recorder,
        server=server,
        clients_started=run.started,
        arrivals_dropped=run.dropped,
        end_time=loop.time(),
        wall_seconds=wall_seconds,
        events=loop.events_run,
    )


class _Run:
    """Starts clients at their arrival times and notices when all have finished."""

    def __init__(self, config: Config, streams: Streams, recorder: Recorder, progress: Progress | None,
                 client: ClientCoroutine) -> None:
        self.config = config
        self.client = client
        self.streams = streams
        self.recorder = recorder
        self.progress = progress
        self.server: ServerModel | None = None
        starts = start_times(config.workload, streams.generator("arrivals"))
        ceiling = config.workload.clients
        self.dropped = max(0, len(starts) - ceiling)
        if self.dropped:
            logger.warning("the arrival stages bring %d clients but workload.clients is %d: the last %d "
                           "arrivals are dropped; raise workload.clients to run them all",
                           len(starts), ceiling, self.dropped)
        self.starts = starts[:ceiling].tolist()
        self.seeds = streams.client_seeds(len(self.starts))
        if not self.starts:
            logger.warning("the arrival stages brought no clients (about %.2f expected); raise the "
                           "stages' target rates or durations", config.workload.arrival.expected_clients)
        self.started = 0
        self.finished = 0
        self.checks = 0
        self.ending = False
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.all_done: asyncio.Future[None] | None = None

    async def main(self, loop: VirtualTimeLoop) -> None:
        self.loop = loop
        self.all_done = loop.create_future()
        if not self.starts:
            return
        loop.schedule_at(self.starts[0], self._start, 0)
        duration = self.config.run.duration
        if duration is not None:
            loop.schedule_at(duration, self._end, None)
        await self.all_done

    @property
    def expected(self) -> int:
        """Clients this run will start, if it runs to the end."""
        return len(self.starts)

    def housekeeping(self, loop: VirtualTimeLoop) -> None:
        """Called every `_EVENTS_PER_CHECK` events: report progress, and now and then collect cycles."""
        self.checks += 1
        if self.checks % _CHECKS_PER_COLLECTION == 0:
            gc.collect()
        if self.progress is not None:
            self.progress(loop.time(), self.finished, len(self.starts))

    def discard(self) -> None:
        """Close the clients still suspended when a run stops early (Ctrl-C, or an error).

        Their tasks will never run again. Left alone, each would log "Task was destroyed but it
        is pending!" when freed, and its `finally` blocks would run against a closed loop:
        thousands of lines after a Ctrl-C. Closing them while the loop is still open runs those
        blocks quietly. Errors from a coroutine that cannot be closed are ignored.
        """
        for task in list(self.tasks.values()):
            task._log_destroy_pending = False
            try:
                task.get_coro().close()
            except Exception:  # noqa: BLE001 - the run is being abandoned
                pass

    def _start(self, index: int) -> None:
        if self.ending:
            return
        self.started += 1
        task = self.loop.create_task(self._client(index))
        self.tasks[index] = task
        following = index + 1
        if following < len(self.starts):
            self.loop.schedule_at(self.starts[following], self._start, following)

    def _end(self, _: object) -> None:
        """Stop at the run's duration: no more starts, and running jobs are cancelled."""
        self.ending = True
        if self.finished == self.started:
            self._set_done()
            return
        for task in list(self.tasks.values()):
            task.cancel()

    async def _client(self, index: int) -> None:
        session = SimSession(self.server, index)
        workload = self.config.workload
        context = ClientContext(
            index=index, session=session, rng=self.seeds.rng(index), policy=self.config.client,
            base_url=SIM_BASE_URL, jobs=workload.jobs_per_client, think_time=workload.think_time,
            options=workload.options, recorder=self.recorder, loop=self.loop,
        )
        try:
            await self.client(context)
        except asyncio.CancelledError:
            context.record_unfinished()
        except Exception as exc:
            # A failing client coroutine means the scenario is wrong: end the run with its error.
            if not self.all_done.done():
                self.all_done.set_exception(exc)
        finally:
            await session.close()
            del self.tasks[index]
            self.finished += 1
            if self.finished == self.started and (self.ending or self.started == len(self.starts)):
                self._set_done()

    def _set_done(self) -> None:
        if not self.all_done.done():
            self.all_done.set_result(None)
