"""The modelled job server: workers, a bounded FIFO queue, network latency and jobs.

One request goes through these steps, all in simulated time:

    client sends ──latency──▶ arrives ──▶ fault? ──▶ answered at once
                                   │
                                   ├─ a worker is free ──▶ served for `service_time`
                                   ├─ queue has room   ──▶ waits (FIFO), then served
                                   └─ queue is full    ──▶ answered 503 at once
    served ──▶ response computed at the end of service ──latency──▶ client

The state of a job is read when its status request finishes service, so a poll that waited in a
long queue sees a fresher state than when it was sent. A request whose client has already timed
out is still served (real servers do not notice), and its answer is counted as wasted.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from sim.config import ServerConfig
from sim.distributions import Sampler
from sim.faults import FaultPlan
from sim.jobs import JobTable
from sim.recorder import ADMITTED, FAULTED, REJECTED, Recorder
from sim.session import CREATE, STATUS, SimCall, SimResponse

if TYPE_CHECKING:
    import numpy as np

    from sim.loop import VirtualTimeLoop

__all__ = ["ServerModel"]

_ENDPOINT_NAMES = {CREATE: "create", STATUS: "status"}


class ServerModel:
    """A job server with `workers` parallel workers and a queue of at most `queue_limit`.

    `streams` maps a component name ("service", "latency", "duration", "outcome", "faults") to
    its own numpy generator, so that a change in one component never shifts another's draws.
    """

    def __init__(
        self,
        loop: VirtualTimeLoop,
        config: ServerConfig,
        streams: dict[str, np.random.Generator],
        recorder: Recorder,
    ) -> None:
        self.loop = loop
        self.config = config
        self.recorder = recorder
        self.jobs = JobTable(config.job_duration, config.job_error_probability,
                             streams["duration"], streams["outcome"])
        self._service_time = Sampler(config.service_time, streams["service"])
        self._latency = Sampler(config.latency, streams["latency"])
        self._faults = FaultPlan(config.faults, streams["faults"])
        self._workers = config.workers
        self._queue_limit = config.queue_limit
        self._queue: collections.deque[SimCall] = collections.deque()
        self.busy = 0
        """Workers serving a request now."""

        self.received = 0
        """Requests that reached the server, whatever happened to them."""
        self.rejected = 0
        """Requests rejected with HTTP 503 because the queue was full."""
        self.faulted = 0
        """Requests that got an injected fault response instead of service."""
        self.served = 0
        """Requests that finished service by a worker."""
        self.wasted = 0
        """Requests served whose client had stopped waiting (timed out or cancelled)."""
        recorder.server_state(loop.time(), 0, 0)

    @property
    def queue_length(self) -> int:
        """Requests waiting for a worker now."""
        return len(self._queue)

    def submit(self, call: SimCall) -> None:
        """Take a request the client sends now; it reaches the server after one latency."""
        loop = self.loop
        latency = self._latency()
        if latency > 0:
            loop.schedule_at(loop._now + latency, self._arrive, call)
        else:
            self._arrive(call)

    def _arrive(self, call: SimCall) -> None:
        self.received += 1
        now = self.loop._now

        if self._faults:
            status = self._faults.status_for(_ENDPOINT_NAMES.get(call.endpoint, "other"))
            if status is not None:
                self.faulted += 1
                self.recorder.request_admission[call.index] = FAULTED
                self._respond(call, SimResponse(status, {"error": f"injected fault: HTTP {status}"}))
                return

        admission = self.recorder.request_admission
        if self.busy < self._workers:
            admission[call.index] = ADMITTED
            self.busy += 1
            self.recorder.server_state(now, len(self._queue), self.busy)
            self.loop.schedule_at(now + self._service_time(), self._complete, call)
        elif len(self._queue) < self._queue_limit:
            admission[call.index] = ADMITTED
            self._queue.append(call)
            self.recorder.server_state(now, len(self._queue), self.busy)
        else:
            self.rejected += 1
            admission[call.index] = REJECTED
            self._respond(call, SimResponse(503, {"error": "server overloaded: request queue is full"}))

    def _complete(self, call: SimCall) -> None:
        now = self.loop._now
        self.served += 1
        response = self._handle(call, now)

        queue = self._queue
        if queue:
            self.loop.schedule_at(now + self._service_time(), self._complete, queue.popleft())
        else:
            self.busy -= 1
        self.recorder.server_state(now, len(queue), self.busy)

        self._respond(call, response)

    def _handle(self, call: SimCall, now: float) -> SimResponse:
        if call.endpoint == STATUS:
            state = self.jobs.state(call.job, now)
            if state is None:
                return SimResponse(404, {"error": f"job {call.path.rsplit('/', 1)[-1]} not found"})
            return SimResponse(200, {"result": state})
        if call.endpoint == CREATE and call.method == "POST":
            call.job = self.jobs.create(now)
            return SimResponse(200, {"job_id": str(call.job)})
        return SimResponse(404, {"error": f"no route for {call.method} {call.path}"})

    def _respond(self, call: SimCall, response: SimResponse) -> None:
        latency = self._latency()
        if latency > 0:
            self.loop.schedule_at(self.loop._now + latency, self._deliver, (call, response))
        else:
            self._deliver((call, response))

    def _deliver(self, item: tuple[SimCall, SimResponse]) -> None:
        call, response = item
        if not call.deliver(response, self.loop._now):
            self.wasted += 1
