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
out is still served (real servers do not notice), and its response is counted as wasted.
Injected faults (`sim.faults`) act on arrival or at the end of service, as their rule says.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from sim.config import FaultRule, ServerConfig
from sim.distributions import Sampler
from sim.faults import FaultPlan, fault_response
from sim.jobs import PENDING, JobTable
from sim.recorder import ADMITTED, FAULTED, NOT_RECEIVED, REJECTED, Recorder
from sim.session import _NO_HEADERS, CREATE, STATUS, SimCall, SimResponse

if TYPE_CHECKING:
    import numpy as np

    from sim.loop import VirtualTimeLoop

__all__ = ["ServerModel"]

_ENDPOINT_NAMES = {CREATE: "create", STATUS: "status"}

SIM_EPOCH = 1_767_225_600.0
"""POSIX time (2026-01-01T00:00:00Z) that simulated time 0 stands for in Date headers."""


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
                             streams["duration"], streams["outcome"],
                             stuck_probability=config.stuck_job_probability, stuck_rng=streams["stuck"],
                             idempotency_keys=config.idempotency_keys)
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
        self.recorder.request_arrived_at[call.index] = self.loop._now
        if self._faults:
            rule = self._faults.pick(_ENDPOINT_NAMES.get(call.endpoint, "other"))
            if rule is not None:
                self.faulted += 1
                self.recorder.request_admission[call.index] = FAULTED
                action = rule.action
                if action == "respond":
                    self._respond(call, self._fault_response(rule, call))
                    return
                if action == "disconnect":
                    self._disconnect(call)
                    return
                if action == "delay":
                    self.loop.schedule_at(self.loop._now + rule.delay, self._admit, call)
                    return
                call.fault = rule  # lost_response and bad_body act when service ends
        self._admit(call)

    def _admit(self, call: SimCall) -> None:
        now = self.loop._now
        admission = self.recorder.request_admission
        if self.busy < self._workers:
            if admission[call.index] == NOT_RECEIVED:
                admission[call.index] = ADMITTED
            self.busy += 1
            self.recorder.server_state(now, len(self._queue), self.busy)
            self._start(call, now)
        elif len(self._queue) < self._queue_limit:
            if admission[call.index] == NOT_RECEIVED:
                admission[call.index] = ADMITTED
            self._queue.append(call)
            self.recorder.server_state(now, len(self._queue), self.busy)
        else:
            self.rejected += 1
            admission[call.index] = REJECTED
            self._respond(call, SimResponse(503, {"error": "server overloaded: request queue is full"}))

    def _start(self, call: SimCall, now: float) -> None:
        self.recorder.request_service_started_at[call.index] = now
        self.loop.schedule_at(now + self._service_time(), self._complete, call)

    def _complete(self, call: SimCall) -> None:
        now = self.loop._now
        self.served += 1
        self.recorder.request_service_ended_at[call.index] = now
        response = self._handle(call, now)

        queue = self._queue
        if queue:
            self._start(queue.popleft(), now)
        else:
            self.busy -= 1
        self.recorder.server_state(now, len(queue), self.busy)

        rule = call.fault
        if rule is None:
            self._respond(call, response)
        elif rule.action == "lost_response":
            self._disconnect(call)
        else:
            self._respond(call, self._fault_response(rule, call))

    def _handle(self, call: SimCall, now: float) -> SimResponse:
        if call.endpoint == STATUS:
            state = self.jobs.state(call.job, now)
            if state is None:
                return SimResponse(404, {"error": f"job {call.path.rsplit('/', 1)[-1]} not found"})
            if state == PENDING and self.config.pending_retry_after:
                hint = self.jobs.retry_after(call.job, now)
                if hint is not None:
                    headers = CIMultiDictProxy(CIMultiDict({"Retry-After": hint}))
                    return SimResponse(200, {"result": state}, headers=headers)
            return SimResponse(200, {"result": state})
        if call.endpoint == CREATE and call.method == "POST":
            call.job = self.jobs.create(now, call.key)
            return SimResponse(200, {"job_id": str(call.job)})
        return SimResponse(404, {"error": f"no route for {call.method} {call.path}"})

    def _fault_response(self, rule: FaultRule, call: SimCall) -> SimResponse:
        fault = fault_response(rule, _ENDPOINT_NAMES.get(call.endpoint, "other"), SIM_EPOCH + self.loop._now)
        headers = CIMultiDictProxy(CIMultiDict(fault.headers)) if fault.headers else _NO_HEADERS
        return SimResponse(fault.status, body=fault.body, content_type=fault.content_type, headers=headers)

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

    def _disconnect(self, call: SimCall) -> None:
        """Close the request's connection without a response; the client learns after one latency."""
        latency = self._latency()
        if latency > 0:
            self.loop.schedule_at(self.loop._now + latency, self._drop, call)
        else:
            self._drop(call)

    def _drop(self, call: SimCall) -> None:
        error = aiohttp.ServerDisconnectedError()
        if not call.fail(error, self.loop._now):
            self.wasted += 1
