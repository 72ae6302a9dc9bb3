"""A custom scenario: clients look up items in a cache that sits in front of a slow store.

`examples/cache-stampede.yaml` runs it. The API is one endpoint, `GET /item/{key}`. It returns
200 with `{"key": ..., "value": ..., "cached": true|false}`, or 503 when the backing store is
busy. Both halves use only what herdsim hands them: the client draws randomness from
`context.rng` only, and the server reads simulated time from `handle`'s `now` only.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import math
from typing import TYPE_CHECKING, Any

import aiohttp

from client import RETRYABLE_STATUSES
from sim.clients import ClientContext
from sim.server import ServerModel
from sim.session import SimCall, SimResponse

if TYPE_CHECKING:
    import numpy as np

    from sim.config import ServerConfig
    from sim.loop import VirtualTimeLoop
    from sim.recorder import Recorder

__all__ = ["CacheServer", "lookup_client", "zipf_cumulative_weights"]

ITEM_PREFIX = "/item/"


class CacheServer(ServerModel):
    """A cache with a TTL in front of a backing store that needs `load_time` seconds per load.

    A lookup of a fresh key is a hit. A lookup of a cold or expired key is a miss: the server
    returns the value and starts a load from the store, and the cache keeps the loaded
    value for `ttl` seconds from the end of that load. Lookups of the key before the load ends
    miss too and start loads of their own, because nothing coalesces them. When a popular key
    expires, that burst of misses is the stampede. The store runs at most `store_limit` loads
    at once, and a miss beyond that gets 503.

    `server.options`: `ttl` (seconds, default 30), `load_time` (seconds, default 0.5) and
    `store_limit` (loads, default 50). Queueing, workers, latency and faults are the base
    model's.
    """

    def __init__(self, loop: VirtualTimeLoop, config: ServerConfig, streams: dict[str, np.random.Generator],
                 recorder: Recorder) -> None:
        super().__init__(loop, config, streams, recorder)
        options = dict(config.options)
        self.ttl = _take_number(options, "ttl", 30.0, "server.options", minimum=0.0, inclusive=False)
        self.load_time = _take_number(options, "load_time", 0.5, "server.options", minimum=0.0)
        store_limit = _take_number(options, "store_limit", 50, "server.options", minimum=1, integer=True)
        self.store_limit = int(store_limit)
        _reject_unknown(options, "server.options", ("ttl", "load_time", "store_limit"))

        self.fresh_until: dict[str, float] = {}
        """Simulated time until which each cached key is fresh."""
        self._loads: list[tuple[float, str]] = []
        """Loads in flight as a heap of (end time, key)."""
        self.hits = 0
        self.misses = 0
        """Lookups that missed and started a load from the store."""
        self.store_busy = 0
        """Lookups that missed while `store_limit` loads were running, so they got 503."""

    def handle(self, call: SimCall, now: float) -> SimResponse:
        """Serve `GET /item/{key}` from the cache, or start a load from the store on a miss."""
        if not call.path.startswith(ITEM_PREFIX) or len(call.path) == len(ITEM_PREFIX):
            return SimResponse(404, {"error": f"no route for {call.method} {call.path}"})
        if call.method != "GET":
            return SimResponse(405, {"error": f"method {call.method} not allowed on {call.path}; use GET"})
        key = call.path[len(ITEM_PREFIX):]

        self._finish_loads(now)
        if self.fresh_until.get(key, -math.inf) > now:
            self.hits += 1
            return SimResponse(200, {"key": key, "value": f"value of {key}", "cached": True})

        if len(self._loads) >= self.store_limit:
            self.store_busy += 1
            return SimResponse(503, {"error": f"backing store busy: {self.store_limit} loads running"})
        self.misses += 1
        heapq.heappush(self._loads, (now + self.load_time, key))
        # NOTE: the miss response leaves after the usual service time, not after `load_time`,
        # because the base model draws the service time before `handle` reads the request.
        return SimResponse(200, {"key": key, "value": f"value of {key}", "cached": False})

    def _finish_loads(self, now: float) -> None:
        """Store every load that ended by `now`. A later load of a key extends its freshness."""
        loads = self._loads
        while loads and loads[0][0] <= now:
            ended_at, key = heapq.heappop(loads)
            self.fresh_until[key] = ended_at + self.ttl


async def lookup_client(context: ClientContext) -> None:
    """Look up `context.jobs` items one after another, with think time between lookups.

    Keys are "0" to "keys - 1" with Zipf-like popularity: key k is drawn with weight
    1 / (k + 1) ** zipf_exponent. A 503 (or any status the job client retries), a timeout or
    a connection error is retried with `context.policy.retry` up to `policy.max_attempts`
    attempts. Each lookup is recorded as "hit", "miss", "gave_up" (attempts used up) or
    "error" (a status that is not retried, such as 404). `policy.poll` and
    `policy.total_timeout` are not used.

    `workload.options`: `keys` (default 1000) and `zipf_exponent` (default 1.0).
    """
    options = dict(context.options)
    keys = int(_take_number(options, "keys", 1000, "workload.options", minimum=1, integer=True))
    exponent = _take_number(options, "zipf_exponent", 1.0, "workload.options", minimum=0.0)
    _reject_unknown(options, "workload.options", ("keys", "zipf_exponent"))

    cumulative = zipf_cumulative_weights(keys, exponent)
    population = range(keys)
    timeout = aiohttp.ClientTimeout(total=context.policy.request_timeout, ceil_threshold=math.inf)
    for number in range(context.jobs):
        if number:
            await asyncio.sleep(context.think())
        key = context.rng.choices(population, cum_weights=cumulative)[0]
        context.job_started()
        outcome, retries = await _look_up(context, f"{context.base_url}{ITEM_PREFIX}{key}", timeout)
        context.job_finished(outcome, retries=retries)


async def _look_up(context: ClientContext, url: str, timeout: aiohttp.ClientTimeout) -> tuple[str, int]:
    """Send one lookup with retries and return its outcome and the number of retries."""
    policy = context.policy
    previous_delay = None
    for attempt in range(1, policy.max_attempts + 1):
        context.session.attempt = attempt  # written into the requests table's `attempt` column
        status = None
        cached = None
        try:
            async with context.session.get(url, timeout=timeout) as response:
                status = response.status
                if status == 200:
                    body = await response.json()
                    cached = body.get("cached") if isinstance(body, dict) else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            # A request that failed or a body that is not JSON is retried like a 5xx.
            status = None

        if status == 200 and isinstance(cached, bool):
            return ("hit" if cached else "miss"), attempt - 1
        if status is not None and status != 200 and status not in RETRYABLE_STATUSES:
            return "error", attempt - 1
        if attempt < policy.max_attempts:
            previous_delay = policy.retry.delay(attempt, context.rng, previous_delay)
            await asyncio.sleep(previous_delay)
    return "gave_up", policy.max_attempts - 1


@functools.lru_cache(maxsize=16)
def zipf_cumulative_weights(keys: int, exponent: float) -> tuple[float, ...]:
    """Return cumulative weights 1 / (k + 1) ** exponent for k = 0..keys-1, for `random.choices`."""
    total = 0.0
    cumulative = []
    for rank in range(1, keys + 1):
        total += rank ** -exponent
        cumulative.append(total)
    return tuple(cumulative)


def _take_number(options: dict[str, Any], name: str, default: float, section: str, *,
                 minimum: float, inclusive: bool = True, integer: bool = False) -> float:
    """Remove option `name` from `options`, check it and return it as a float.

    Raises `ValueError` naming the option, the rule and the value if the value is invalid.
    """
    value = options.pop(name, default)
    kind = "an integer" if integer else "a number"
    valid_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not valid_type or not math.isfinite(value):
        raise ValueError(f"{section}.{name}: must be {kind}; got {value!r}")
    if value < minimum or (value == minimum and not inclusive):
        bound = ">=" if inclusive else ">"
        raise ValueError(f"{section}.{name}: must be {kind} {bound} {minimum:g}; got {value!r}")
    return float(value)


def _reject_unknown(options: dict[str, Any], section: str, valid: tuple[str, ...]) -> None:
    """Raise `ValueError` if `options` still contains a key after every valid one was taken."""
    if options:
        unknown = ", ".join(f"{section}.{name}" for name in sorted(map(str, options)))
        raise ValueError(f"{unknown}: unknown option; valid options are {', '.join(valid)}")
