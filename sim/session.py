"""The seam: a stand-in for `aiohttp.ClientSession` backed by the modelled server.

`TranslationClient` uses a small part of `aiohttp.ClientSession`:

    async with session.request(method, url, timeout=ClientTimeout(total=...)) as response:
        response.status, response.headers, await response.json(content_type=None),
        await response.text(errors=...), await response.read()
    await session.close()

`SimSession` offers exactly that part. A request is handed to the `ServerModel`, which answers
it in simulated time; a request timeout raises `asyncio.TimeoutError` as aiohttp's total timeout
does. So the client cannot tell which one it talks to, and the contract tests hold it to that.
"""

from __future__ import annotations

import asyncio
import json
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from client import Attempt
from sim.jobs import parse_job_id
from sim.recorder import STATUS as _STATUS_FIELD  # the endpoint code STATUS is defined below
from sim.recorder import (
    CONNECTION_ERROR,
    END_WIDTH,
    ERROR,
    FINISHED_AT,
    JOB,
    NO_ERROR,
    NOT_RECEIVED,
    SENT_WIDTH,
    TIMEOUT,
    UNFINISHED,
)

if TYPE_CHECKING:
    from sim.server import ServerModel

__all__ = ["SimResponse", "SimSession", "SIM_BASE_URL", "CREATE", "STATUS", "OTHER"]

SIM_BASE_URL = "http://sim.invalid"
"""Base URL the simulated clients use; it never reaches a real network."""

CREATE, STATUS, OTHER = range(3)
_STATUS_PREFIX = "/status/"
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
_JSON_TYPE = "application/json"
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


_NAN = float("nan")
_RAW = object()  # marks a response whose body is given as bytes rather than as JSON data


class SimResponse:
    """The part of `aiohttp.ClientResponse` the client reads.

    The body is either JSON `data` (the common case, decoded for free) or raw `body` bytes with
    a `content_type`, which `json()` decodes as aiohttp does: an empty body gives None and
    invalid JSON raises `json.JSONDecodeError`.
    """

    # The server builds one response per simulated request, almost always a JSON body with no
    # headers. So only the fields every response sets are slots. `headers`, `content_type` and
    # `_body` are class defaults, and a response that differs gets an instance dict for them.
    __slots__ = ("status", "_data", "_method", "_url", "__dict__")

    headers: CIMultiDictProxy[str] = _NO_HEADERS
    content_type: str = _JSON_TYPE
    _body: bytes | None = None

    def __init__(self, status: int, data: Any = _RAW, *, body: bytes | None = None,
                 content_type: str = _JSON_TYPE, headers: CIMultiDictProxy[str] = _NO_HEADERS) -> None:
        self.status = status
        self._data = data
        if body is not None:
            self._body = body
        if content_type is not _JSON_TYPE:
            self.content_type = content_type
        if headers is not _NO_HEADERS:
            self.headers = headers
        # Method and URL of the request this response belongs to, set when it is delivered. Copied rather
        # than pointing at the request, because the request refers to this response through its
        # future, and a cycle would keep both alive until the next garbage collection.
        self._method = ""
        self._url = ""

    @property
    def reason(self) -> str:
        """The HTTP reason phrase of `status`, or "" for a status without a known one."""
        return _REASONS.get(self.status, "")

    @property
    def request_info(self) -> aiohttp.RequestInfo:
        return aiohttp.RequestInfo(URL(self._url), self._method, _NO_HEADERS, URL(self._url))

    async def read(self) -> bytes:
        return self._body if self._body is not None else json.dumps(self._data).encode()

    async def text(self, encoding: str | None = None, errors: str = "strict") -> str:
        return (await self.read()).decode(encoding or "utf-8", errors)

    async def json(self, *, encoding: str | None = None, loads: Any = json.loads,
                   content_type: str | None = _JSON_TYPE) -> Any:
        if content_type is not None and content_type not in self.content_type:
            raise aiohttp.ContentTypeError(
                self.request_info, (), status=self.status, headers=self.headers,
                message=f"Attempt to decode JSON with unexpected mimetype: {self.content_type}",
            )
        if self._body is None and loads is json.loads:
            return self._data
        stripped = (await self.read()).strip()
        if not stripped:
            return None
        return loads(stripped.decode(encoding or "utf-8"))

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise aiohttp.ClientResponseError(self.request_info, (), status=self.status,
                                              message=self.reason, headers=self.headers)


class _Done:
    """An awaitable that finishes at once; returned by `__aexit__` to skip a coroutine frame."""

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


_DONE = _Done()


class SimCall:
    """One request in flight: what `SimSession.request` returns, awaited or used with `async with`.

    The request leaves the client when it is first awaited, as with aiohttp.
    """

    # Fields every request sets live in slots. The rare ones (`fault`, `resent`, `epoch`) are
    # class defaults until set, in an instance dict that Python creates only then.
    __slots__ = (
        "session", "method", "path", "endpoint", "job", "timeout", "key", "future", "index",
        "finished", "__dict__",
    )

    fault: Any = None
    """Fault rule applied when the request finishes service, or None."""
    resent = False
    """True once the session has resent the request after a disconnect."""
    epoch = 0
    """The server's outage count when service started; a later outage voids the service."""

    def __init__(self, session: SimSession, method: str, path: str, endpoint: int, job: int,
                 timeout: float | None, key: str | None) -> None:
        self.session = session
        self.method = method
        self.path = path
        self.endpoint = endpoint
        self.job = job
        self.timeout = timeout
        self.key = key
        """Idempotency-Key header of the request, or None."""
        self.future: asyncio.Future[SimResponse] | None = None
        self.index = -1
        self.finished = False
        """True once the client got a response, an error or a timeout; later ones are wasted."""

    def _send(self) -> asyncio.Future[SimResponse]:
        future = self.future
        if future is None:
            future = self.session._send(self)
        return future

    def __await__(self) -> Any:
        return self._send().__await__()

    def __aenter__(self) -> asyncio.Future[SimResponse]:
        future = self.future
        if future is None:
            future = self.session._send(self)
        return future

    def __aexit__(self, *exc_info: object) -> _Done:
        return _DONE

    def deliver(self, response: SimResponse, now: float) -> bool:
        """Hand `response` to the waiting client; return False if nobody waits any more."""
        if self.finished:
            return False
        self.finished = True
        future = self.future
        if future.cancelled():
            return False
        response._method = self.method
        response._url = self.path
        future.set_result(response)
        job = self.job
        if job >= 0 and self.endpoint == CREATE:
            self.session.job = job
        # Recorder.request_finished, inlined: this runs once per simulated request.
        ends = self.session._recorder.ends
        base = self.index * END_WIDTH
        ends[base + FINISHED_AT] = now
        ends[base + _STATUS_FIELD] = response.status
        ends[base + ERROR] = NO_ERROR
        if job >= 0:
            ends[base + JOB] = job
        return True

    def fail(self, error: BaseException, now: float) -> bool:
        """End the request with a connection `error`; return False if nobody waits any more.

        Like aiohttp (3.14, `ClientSession._request`), the session resends an idempotent
        request once when the server disconnects, without telling the client, so the server
        receives one request more than the client counts.
        """
        if self.finished:
            return False
        future = self.future
        if future.cancelled():
            self.finished = True
            return False
        recorder = self.session._recorder
        recorder.request_finished(self.index, now, 0, CONNECTION_ERROR, -1)
        if (not self.resent and self.method in _IDEMPOTENT_METHODS
                and isinstance(error, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError))
                and not isinstance(error, aiohttp.ClientConnectorError)):
            self.resent = True
            self.fault = None  # a fault rule fired for the first transmission only
            recorder.resends += 1
            self.index = recorder.request_sent(self.session._client, self.endpoint, self.job, now,
                                               self.session.attempt)
            self.session._server.submit(self)
            return True
        self.finished = True
        future.set_exception(error)
        return True

    def expire(self, now: float) -> None:
        """End the wait with `asyncio.TimeoutError`, as aiohttp's total timeout does."""
        if self.finished:
            return
        self.finished = True
        future = self.future
        if future.cancelled():
            return
        future.set_exception(asyncio.TimeoutError())
        self.session._recorder.request_finished(self.index, now, 0, TIMEOUT, -1)


def _expire(call: SimCall) -> None:
    call.expire(call.session._loop._now)


_answered: Callable[[SimCall], bool] = operator.attrgetter("finished")
"""Tell a timeout lane that a call no longer needs its timeout. A timeout lane calls this once
per request, so it is a built-in attribute getter rather than a Python function."""


class SimSession:
    """Stand-in for `aiohttp.ClientSession` for one virtual client.

    `client` is the client's number, written on every request it records. Only the keyword
    arguments the job API needs are accepted, so a client that relies on another aiohttp
    feature fails loudly here instead of being simulated wrongly.
    """

    def __init__(self, server: ServerModel, client: int, base_url: str = SIM_BASE_URL) -> None:
        self._server = server
        self._loop = server.loop
        self._recorder = server.recorder
        self._timeouts = server.timeouts
        self._client = client
        self._base_url = base_url
        self._closed = False
        self._routes: dict[str, tuple[str, int, int]] = {}
        """(path, endpoint, job) of each URL this session has requested."""
        self.requests = 0
        """Requests this session has sent."""
        self.job = -1
        """Number of the last job a create request of this session returned, or -1."""
        self.attempt = 1
        """Attempt number recorded with the next request; set by the client's hook."""

    def note_attempt(self, attempt: Attempt) -> None:
        """Hook for `Hooks.before_attempt`: record the client's attempt number with the request."""
        self.attempt = attempt.attempt

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True

    async def __aenter__(self) -> SimSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def request(self, method: str, url: str, *, timeout: aiohttp.ClientTimeout | None = None,
                headers: Any = None, json: Any = None, trace_request_ctx: Any = None) -> SimCall:
        if self._closed:
            raise RuntimeError("Session is closed")
        route = self._routes.get(url)
        if route is None:
            route = self._routes[url] = _route(url, self._base_url)
        path, endpoint, job = route
        total = None if timeout is None else timeout.total
        key = None
        if headers:
            key = headers.get("Idempotency-Key")
        return SimCall(self, method.upper(), path, endpoint, job, total, key)

    def get(self, url: str, **kwargs: Any) -> SimCall:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> SimCall:
        return self.request("POST", url, **kwargs)

    def _send(self, call: SimCall) -> asyncio.Future[SimResponse]:
        loop = self._loop
        now = loop._now
        future = call.future = loop.create_future()
        # Recorder.request_sent, inlined: this runs once per simulated request.
        recorder = self._recorder
        sends = recorder.sends
        call.index = len(sends) // SENT_WIDTH
        sends.extend((self._client, call.endpoint, now, self.attempt))
        recorder.ends.extend((call.job, _NAN, 0.0, UNFINISHED, NOT_RECEIVED, _NAN, _NAN, _NAN))
        self.requests += 1
        timeout = call.timeout
        if timeout is not None and timeout > 0:
            self._timeouts.add(now + timeout, _expire, call)
        self._server.submit(call)
        return future


def _route(url: str, base_url: str) -> tuple[str, int, int]:
    """Return the path, endpoint code and job number (-1 if none) of a request for `url`."""
    path = url[len(base_url):] if url.startswith(base_url) else url
    if path == "/create_job":
        return path, CREATE, -1
    if path.startswith(_STATUS_PREFIX):
        return path, STATUS, parse_job_id(path[len(_STATUS_PREFIX):])
    return path, OTHER, -1


_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
