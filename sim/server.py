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
import heapq
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy

from sim.config import CapacityWindow, FaultRule, ServerConfig
from sim.distributions import Sampler
from sim.faults import FaultPlan, fault_response
from sim.jobs import PENDING, JobTable
from sim.recorder import (
    ABANDONED,
    ADMISSION,
    ADMITTED,
    ARRIVED_AT,
    END_WIDTH,
    FAULTED,
    NOT_RECEIVED,
    RATE_LIMITED,
    REFUSED,
    REJECTED,
    SERVICE_ENDED_AT,
    SERVICE_STARTED_AT,
    Recorder,
)
from sim.loop import TimerLane
from sim.session import _NO_HEADERS, CREATE, OTHER, STATUS, SimCall, SimResponse, _answered

if TYPE_CHECKING:
    import numpy as np

    from sim.loop import VirtualTimeLoop

__all__ = ["ServerModel"]

_ENDPOINT_NAMES = {CREATE: "create", STATUS: "status"}

SIM_EPOCH = 1_767_225_600.0
"""POSIX time (2026-01-01T00:00:00Z) that simulated time 0 stands for in Date headers."""


class ServerModel:
    """A job server with `workers` parallel workers and a queue of at most `queue_limit`.

    `streams` maps a component name (see `sim.streams.SERVER_STREAMS`) to its own numpy
    generator, so that a change in one component never shifts another's draws. Subclasses may
    override `handle` to serve another API.
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
                             idempotency_keys=config.idempotency_keys, job_workers=config.job_workers)
        service = Sampler(config.service_time, streams["service"])
        self._service_time = {
            CREATE: Sampler(config.service_time_create, streams["service"]) if config.service_time_create else service,
            STATUS: Sampler(config.service_time_status, streams["service"]) if config.service_time_status else service,
            OTHER: service,
        }
        self._service_next = {endpoint: sampler.next for endpoint, sampler in self._service_time.items()}
        request_latency = Sampler(config.latency, streams["latency"])
        response_latency = (Sampler(config.response_latency, streams["latency"])
                            if config.response_latency is not None else request_latency)
        self._latency = request_latency.next
        self._response_latency = response_latency.next
        # A constant latency of 0 (common in capacity studies) needs no draw and no event.
        self._instant_requests = request_latency.constant == 0
        self._instant_responses = response_latency.constant == 0
        self._network_rng = streams["network"]
        self._faults = FaultPlan(config.faults, streams["faults"])
        self._workers = config.workers
        self._service_factor = 1.0
        self._queue_limit = config.queue_limit
        self._queue: collections.deque[SimCall] = collections.deque()
        self._in_service: dict[SimCall, None] = {}
        self._down = False
        self._epoch = 0
        self._tokens = float(config.rate_limit.burst) if config.rate_limit else 0.0
        self._tokens_at = 0.0
        self.busy = 0
        """Workers serving a request now."""
        self._ends = recorder.ends
        self._states = recorder.states
        self._outages = any(window.kind == "outage" for window in config.schedule)
        """Whether requests in service must be tracked, to be cut off by an outage."""
        self._pending_hints = config.pending_retry_after
        self.timeouts = TimerLane(loop, _answered)
        """Request timeouts of every session on this server; most are set in time order."""

        self.received = 0
        """Requests that reached the server, whatever happened to them."""
        self.rejected = 0
        """Requests rejected because the queue was full or they waited past `queue_timeout`."""
        self.rate_limited = 0
        """Requests rejected by the token bucket."""
        self.refused = 0
        """Connections refused because the server was down (never received)."""
        self.network_dropped = 0
        """Requests whose connection the network dropped before they reached the server."""
        self.abandoned_dropped = 0
        """Queued requests discarded because their client had timed out (`abandoned_work: drop`)."""
        self.faulted = 0
        """Requests that matched an injected fault rule."""
        self.served = 0
        """Requests that finished service by a worker."""
        self.wasted = 0
        """Responses no client waited for any more: the client had timed out or was cancelled."""
        recorder.server_state(loop.time(), 0, 0)

        for window in config.schedule:
            loop.schedule_at(window.start, self._begin_window, window)
            loop.schedule_at(window.end, self._end_window, window)

        # A server with no network drops, faults, rate limit or outages (the usual capacity
        # study) takes a shorter path through the same steps, in the same order, with the same
        # draws. A subclass that overrides `submit` keeps its own.
        plain = (config.drop_probability == 0 and not config.faults and config.rate_limit is None
                 and not self._outages)
        self._on_arrival = self._arrive_plain if plain else self._arrive
        if plain and self._instant_requests and type(self).submit is ServerModel.submit:
            self.submit = self._arrive_plain  # type: ignore[method-assign]
        self._on_complete = self._complete_plain if plain else self._complete

    @property
    def queue_length(self) -> int:
        """Requests waiting for a worker now."""
        return len(self._queue)

    # ------------------------------------------------------------------ arrival

    def submit(self, call: SimCall) -> None:
        """Take a request the client sends now; it reaches the server after one latency."""
        loop = self.loop
        if self.config.drop_probability > 0 and self._network_rng.random() < self.config.drop_probability:
            self.network_dropped += 1
            self._disconnect(call)
            return
        if self._instant_requests:
            self._on_arrival(call)
            return
        latency = self._latency()
        if latency > 0:
            loop.schedule_at(loop._now + latency, self._on_arrival, call)
        else:
            self._on_arrival(call)

    def _arrive_plain(self, call: SimCall) -> None:
        """`_arrive`, `_admit` and `_start` in one, for a plain server (and `submit` too when
        requests have no latency)."""
        now = self.loop._now
        self.received += 1
        ends = self._ends
        base = call.index * END_WIDTH
        ends[base + ARRIVED_AT] = now
        if self.busy < self._workers:
            ends[base + ADMISSION] = ADMITTED
            self.busy += 1
            self._states.extend((now, len(self._queue), self.busy))
            ends[base + SERVICE_STARTED_AT] = now
            service = self._service_next[call.endpoint]() * self._service_factor
            # loop.schedule_at, inlined: a service time is never negative.
            loop = self.loop
            heapq.heappush(loop._timers, (now + service, next(loop._sequence), self._on_complete, call))
        elif len(self._queue) < self._queue_limit:
            ends[base + ADMISSION] = ADMITTED
            self._queue.append(call)
            self._states.extend((now, len(self._queue), self.busy))
        else:
            self._reject(call)

    def _arrive(self, call: SimCall) -> None:
        if self._down:
            self.refused += 1
            self.recorder.set_admission(call.index, REFUSED)
            self._refuse(call)
            return

        self.received += 1
        self._ends[call.index * END_WIDTH + ARRIVED_AT] = self.loop._now
        if self._faults:
            rule = self._faults.pick(_ENDPOINT_NAMES.get(call.endpoint, "other"))
            if rule is not None:
                self.faulted += 1
                self.recorder.set_admission(call.index, FAULTED)
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

        if self.config.rate_limit is not None and not self._take_token():
            self.rate_limited += 1
            self.recorder.set_admission(call.index, RATE_LIMITED)
            self._respond(call, self._rate_limited_response())
            return
        self._admit(call)

    def _take_token(self) -> bool:
        limit = self.config.rate_limit
        now = self.loop._now
        self._tokens = min(float(limit.burst), self._tokens + (now - self._tokens_at) * limit.rate)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _admit(self, call: SimCall) -> None:
        now = self.loop._now
        if self._down:
            self.refused += 1
            self.recorder.set_admission(call.index, REFUSED)
            self._refuse(call)
            return
        ends = self._ends
        where = call.index * END_WIDTH + ADMISSION
        if self.busy < self._workers:
            if ends[where] == NOT_RECEIVED:
                ends[where] = ADMITTED
            self.busy += 1
            self._states.extend((now, len(self._queue), self.busy))
            self._start(call, now)
        elif len(self._queue) < self._queue_limit:
            if ends[where] == NOT_RECEIVED:
                ends[where] = ADMITTED
            self._queue.append(call)
            self._states.extend((now, len(self._queue), self.busy))
        else:
            self._reject(call)

    def _reject(self, call: SimCall) -> None:
        self.rejected += 1
        self.recorder.set_admission(call.index, REJECTED)
        headers = _NO_HEADERS
        if self.config.reject_retry_after:
            drain = len(self._queue) * self._service_time[OTHER].distribution.mean * self._service_factor
            seconds = max(1, math.ceil(drain / max(self._workers, 1)))
            headers = CIMultiDictProxy(CIMultiDict({"Retry-After": str(seconds)}))
        self._respond(call, SimResponse(self.config.reject_status,
                                        {"error": "server overloaded: request queue is full"}, headers=headers))

    # ------------------------------------------------------------------ service

    def _start(self, call: SimCall, now: float) -> None:
        self._ends[call.index * END_WIDTH + SERVICE_STARTED_AT] = now
        call.epoch = self._epoch
        if self._outages:
            self._in_service[call] = None
        service = self._service_next[call.endpoint]() * self._service_factor
        self.loop.schedule_at(now + service, self._on_complete, call)

    def _next_from_queue(self, now: float) -> SimCall | None:
        """Pop the next request worth serving, rejecting or dropping the others on the way."""
        queue = self._queue
        timeout = self.config.queue_timeout
        drop_abandoned = self.config.abandoned_work == "drop"
        while queue:
            call = queue.popleft()
            if drop_abandoned and call.finished:
                self.abandoned_dropped += 1
                self.recorder.set_admission(call.index, ABANDONED)
                continue
            if timeout is not None and now - self.recorder.arrived_at(call.index) > timeout:
                self._reject(call)
                continue
            return call
        return None

    def _complete(self, call: SimCall) -> None:
        if call.epoch != self._epoch:
            return  # the server went down while this request was in service
        now = self.loop._now
        if self._outages:
            del self._in_service[call]
        self.served += 1
        self._ends[call.index * END_WIDTH + SERVICE_ENDED_AT] = now
        response = self.handle(call, now)

        self.busy -= 1
        if self._queue:
            self._fill_workers(now)
        self._states.extend((now, len(self._queue), self.busy))

        rule = call.fault
        if rule is None:
            self._respond(call, response)
        elif rule.action == "lost_response":
            self._disconnect(call)
        else:
            self._respond(call, self._fault_response(rule, call))

    def _complete_plain(self, call: SimCall) -> None:
        """`_complete` for a plain server: no outage can void the service and no fault applies."""
        now = self.loop._now
        self.served += 1
        self._ends[call.index * END_WIDTH + SERVICE_ENDED_AT] = now
        response = self.handle(call, now)

        self.busy -= 1
        if self._queue:
            self._fill_workers(now)
        self._states.extend((now, len(self._queue), self.busy))

        if self._instant_responses:
            if not call.deliver(response, now):
                self.wasted += 1
        else:
            self._respond(call, response)

    def _fill_workers(self, now: float) -> None:
        while self.busy < self._workers:
            following = self._next_from_queue(now)
            if following is None:
                return
            self.busy += 1
            self._start(following, now)

    def handle(self, call: SimCall, now: float) -> SimResponse:
        """Compute the response to `call` when its service ends at `now`.

        This is the extension point for a custom server model: a subclass overrides it to
        serve another API, reading `call.method`, `call.path` and `call.endpoint`, and returns
        a `SimResponse(status, json_data)`. Queueing, workers, latency, faults and recording
        stay as they are.
        """
        if call.endpoint == STATUS:
            # The common response first, without a call: a job that is still pending, when
            # pending responses carry no Retry-After.
            number = call.job
            finishes_at = self.jobs.finishes_at
            if 0 <= number < len(finishes_at) and now < finishes_at[number] and not self._pending_hints:
                return SimResponse(200, {"result": PENDING})
            state = self.jobs.state(number, now)
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

    # ------------------------------------------------------------------ capacity schedule

    def _begin_window(self, window: CapacityWindow) -> None:
        now = self.loop._now
        if window.kind == "outage":
            self._down = True
            self._epoch += 1
            lost = list(self._in_service) + list(self._queue)
            self._in_service.clear()
            self._queue.clear()
            self.busy = 0
            self.recorder.server_state(now, 0, 0)
            for call in lost:
                self._disconnect(call)
            return
        self._workers = self.config.workers if window.workers is None else window.workers
        self._service_factor = window.service_factor

    def _end_window(self, window: CapacityWindow) -> None:
        now = self.loop._now
        if window.kind == "outage":
            self._down = False
            return
        self._workers = self.config.workers
        self._service_factor = 1.0
        self._fill_workers(now)
        self.recorder.server_state(now, len(self._queue), self.busy)

    # ------------------------------------------------------------------ responses

    def _rate_limited_response(self) -> SimResponse:
        limit = self.config.rate_limit
        wait = max(1, math.ceil((1.0 - self._tokens) / limit.rate))
        headers = CIMultiDictProxy(CIMultiDict({"Retry-After": str(wait)}))
        return SimResponse(limit.status, {"error": "rate limit exceeded"}, headers=headers)

    def _fault_response(self, rule: FaultRule, call: SimCall) -> SimResponse:
        fault = fault_response(rule, _ENDPOINT_NAMES.get(call.endpoint, "other"), SIM_EPOCH + self.loop._now)
        headers = CIMultiDictProxy(CIMultiDict(fault.headers)) if fault.headers else _NO_HEADERS
        return SimResponse(fault.status, body=fault.body, content_type=fault.content_type, headers=headers)

    def _respond(self, call: SimCall, response: SimResponse) -> None:
        self._after_response_latency(self._deliver, (call, response))

    def _after_response_latency(self, function: Callable[[Any], None], item: Any) -> None:
        """Run `function(item)` once the answer has crossed the network back to the client."""
        if self._instant_responses:
            function(item)
            return
        latency = self._response_latency()
        if latency > 0:
            self.loop.schedule_at(self.loop._now + latency, function, item)
        else:
            function(item)

    def _deliver(self, item: tuple[SimCall, SimResponse]) -> None:
        call, response = item
        if not call.deliver(response, self.loop._now):
            self.wasted += 1

    def _disconnect(self, call: SimCall) -> None:
        """Close the request's connection without a response; the client learns after one latency."""
        self._fail_later(call, aiohttp.ServerDisconnectedError())

    def _refuse(self, call: SimCall) -> None:
        """Refuse the connection, as a server that is down does; the client learns after one latency."""
        key = ConnectionKey("sim.invalid", 80, False, True, None, None, None)
        self._fail_later(call, aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused")))

    def _fail_later(self, call: SimCall, error: BaseException) -> None:
        self._after_response_latency(self._fail, (call, error))

    def _fail(self, item: tuple[SimCall, BaseException]) -> None:
        call, error = item
        if not call.fail(error, self.loop._now):
            self.wasted += 1
