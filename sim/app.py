"""The real job server: an `aiohttp.web` application for the job API.

    POST /create_job          -> 200 {"job_id": "17"}
    GET  /status/{job_id}     -> 200 {"result": "pending" | "completed" | "error"}
                              -> 404 {"error": "job 99 not found"}

It follows the same `ServerConfig` as the modelled server: job durations and outcomes come from
the shared `JobTable`, injected faults from the shared `FaultPlan`, and `workers`,
`service_time` and `queue_limit` bound how many requests it serves at once, so a client sees
the same answers from both. Network latency is whatever the real network adds.

`python -m sim serve CONFIG` runs it; the tests start it on 127.0.0.1 with port 0.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable

from aiohttp import web

from sim.config import FaultRule, ServerConfig
from sim.distributions import Sampler
from sim.faults import FaultPlan, fault_response
from sim.jobs import PENDING, JobTable, parse_job_id
from sim.streams import Streams

__all__ = ["JobServer", "create_app", "serve"]

logger = logging.getLogger("sim.server")


class JobServer:
    """State and handlers of one running job server; times are the loop's monotonic clock."""

    def __init__(self, config: ServerConfig, seed: int = 0) -> None:
        streams = Streams(seed)
        self.config = config
        self.jobs = JobTable(config.job_duration, config.job_error_probability,
                             streams.generator("duration"), streams.generator("outcome"),
                             stuck_probability=config.stuck_job_probability,
                             stuck_rng=streams.generator("stuck"),
                             idempotency_keys=config.idempotency_keys)
        self._service_time = Sampler(config.service_time, streams.generator("service"))
        self._faults = FaultPlan(config.faults, streams.generator("faults"))
        self._workers = asyncio.Semaphore(config.workers)
        self._waiting = 0
        self.received = 0
        """Requests that reached a handler, whatever happened to them."""
        self.rejected = 0
        """Requests rejected with HTTP 503 because the queue was full."""
        self.faulted = 0
        """Requests that matched an injected fault rule."""

    async def create_job(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")

        def create() -> web.Response:
            number = self.jobs.create(asyncio.get_running_loop().time(), key)
            logger.debug("created job %d", number)
            return web.json_response({"job_id": str(number)})

        return await self._handle(request, "create", create)

    async def status(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["job_id"]

        def status() -> web.Response:
            state = self.jobs.state(parse_job_id(job_id), asyncio.get_running_loop().time())
            if state is None:
                return web.json_response({"error": f"job {job_id} not found"}, status=404)
            headers = None
            if state == PENDING and self.config.pending_retry_after:
                hint = self.jobs.retry_after(parse_job_id(job_id), asyncio.get_running_loop().time())
                if hint is not None:
                    headers = {"Retry-After": hint}
            return web.json_response({"result": state}, headers=headers)

        return await self._handle(request, "status", status)

    async def _handle(self, request: web.Request, endpoint: str,
                      serve: Callable[[], web.Response]) -> web.StreamResponse:
        """Apply the fault rules and the capacity limits around `serve`, in the model's order."""
        self.received += 1
        rule = self._faults.pick(endpoint)
        if rule is not None:
            self.faulted += 1
            if rule.action == "respond":
                return _fault(rule, endpoint)
            if rule.action == "disconnect":
                return _drop(request)
            if rule.action == "delay":
                await asyncio.sleep(rule.delay)

        if self._workers.locked() and self._waiting >= self.config.queue_limit:
            self.rejected += 1
            return web.json_response({"error": "server overloaded: request queue is full"}, status=503)

        self._waiting += 1
        try:
            await self._workers.acquire()
        finally:
            self._waiting -= 1
        try:
            service = self._service_time()
            if service > 0:
                await asyncio.sleep(service)
            response = serve()
        finally:
            self._workers.release()

        if rule is not None and rule.action == "lost_response":
            return _drop(request)
        if rule is not None and rule.action == "bad_body":
            return _fault(rule, endpoint)
        return response


def _fault(rule: FaultRule, endpoint: str) -> web.Response:
    fault = fault_response(rule, endpoint, time.time())
    response = web.Response(status=fault.status, body=fault.body, headers=fault.headers)
    response.content_type = fault.content_type
    return response


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without a response; the client sees the server disconnect."""
    transport = request.transport
    if transport is not None:
        transport.close()
    # aiohttp still runs its response path; writing to the closed transport sends nothing.
    return web.Response(status=499)


def create_app(config: ServerConfig, *, seed: int = 0) -> web.Application:
    """Build the job API application; its `JobServer` is `app[SERVER_KEY]`."""
    server = JobServer(config, seed)
    app = web.Application()
    app[SERVER_KEY] = server
    app.router.add_post("/create_job", server.create_job)
    app.router.add_get("/status/{job_id}", server.status)
    return app


SERVER_KEY = web.AppKey("server", JobServer)


def serve(config: ServerConfig, *, seed: int = 0, host: str | None = None, port: int | None = None) -> None:
    """Run the job server until interrupted (Ctrl+C), printing the address it listens on.

    Raises `OSError` if the address cannot be bound (for example, the port is in use).
    """
    host = config.host if host is None else host
    port = config.port if port is None else port
    try:
        asyncio.run(_serve(create_app(config, seed=seed), host, port))
    except KeyboardInterrupt:
        print("job server stopped", file=sys.stderr)


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        print(f"job server listening on http://{bound_host}:{bound_port} (Ctrl+C to stop)",
              file=sys.stderr, flush=True)
        logger.info("job server listening on http://%s:%d", bound_host, bound_port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
