"""Run configuration: the YAML schema, strict validation and the resolved form.

A config has four sections plus an optional name:

    name: thundering-herd
    client:   {poll: {...}, retry: {...}, max_attempts: 6, total_timeout: 600, request_timeout: 10}
    server:   {workers: 50, service_time: 0.005, queue_limit: 1000, latency: 0.001, ...}
    workload: {clients: 5000, arrival: {kind: at_once}}
    run:      {seed: 1, duration: null, bin_width: 1.0}

The `client` section builds `client.ClientPolicy` itself, so what the simulator runs is exactly
what users ship. Validation is strict and complete before anything runs: every unknown key,
wrong type and out-of-range value is reported at once, each with its path (`server.workers`),
the rule and the value received.
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import enum
import io
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import yaml

from client import Backoff, ClientPolicy
from client.validation import FieldError, check_fields, violated_rule
from sim.distributions import Constant, Distribution, Empirical, LogNormal, SAMPLE_UNITS, SampleFileError, read_samples

__all__ = [
    "AtOnce",
    "Arrival",
    "Config",
    "CapacityWindow",
    "ConfigError",
    "FaultRule",
    "RateLimit",
    "Poisson",
    "RunConfig",
    "ServerConfig",
    "Stage",
    "Stages",
    "UniformWindow",
    "WorkloadConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "override",
]


# ----------------------------------------------------------------------------- schema


_RESPOND_BODIES = ("json", "html", "empty")
_BAD_BODIES = ("html", "empty", "invalid_json", "missing_field", "unknown_state")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Make the server misbehave on some requests, on purpose.

    Give either `first` (the first N matching requests the server receives) or `probability`
    (each matching request independently). `action` says what happens to a matching request:

    - `respond`: answer at once with `status`, without taking a worker, as a failing proxy
      would; `retry_after` adds a Retry-After header and `body` picks the body;
    - `disconnect`: close the connection without a response and without serving the request;
    - `lost_response`: serve the request normally (a create makes a job), then close the
      connection instead of sending the response;
    - `delay`: hold the request for `delay` seconds, then serve it normally;
    - `bad_body`: serve normally but answer 200 with a broken `body`.
    """

    endpoint: Literal["create", "status", "any"] = "any"
    first: int | None = field(default=None, metadata={"ge": 1})
    probability: float | None = field(default=None, metadata={"ge": 0, "le": 1})
    action: Literal["respond", "disconnect", "lost_response", "delay", "bad_body"] = "respond"
    status: int = field(default=503, metadata={"ge": 400, "le": 599})
    """HTTP status of a `respond` fault."""
    retry_after: float | None = field(default=None, metadata={"ge": 0, "unit": "s"})
    """Retry-After of a `respond` fault, in seconds; None sends no header."""
    retry_after_format: Literal["seconds", "http_date"] = "seconds"
    """Whether Retry-After is sent as delay-seconds or as an HTTP-date (rounded up to 1 s)."""
    retry_after_raw: str | None = None
    """Retry-After value sent verbatim instead of `retry_after`, to test malformed headers."""
    body: Literal["json", "html", "empty", "invalid_json", "missing_field", "unknown_state"] = "json"
    """Body of a `respond` fault (json, html, empty) or a `bad_body` fault (html, empty,
    invalid_json, missing_field, unknown_state)."""
    delay: float = field(default=0.0, metadata={"ge": 0, "unit": "s"})
    """Seconds a `delay` fault holds the request before serving it."""

    def __post_init__(self) -> None:
        check_fields(self)
        if (self.first is None) == (self.probability is None):
            raise ValueError(
                "give exactly one of first (a count of requests) or probability; "
                f"got first={self.first!r}, probability={self.probability!r}"
            )
        if self.action == "respond" and self.body not in _RESPOND_BODIES:
            raise FieldError("FaultRule", "body", f"one of {', '.join(_RESPOND_BODIES)} for action respond", self.body)
        if self.action == "bad_body" and self.body not in _BAD_BODIES:
            raise FieldError("FaultRule", "body", f"one of {', '.join(_BAD_BODIES)} for action bad_body", self.body)
        if self.action == "delay" and self.delay <= 0:
            raise FieldError("FaultRule", "delay", "> 0 for action delay", self.delay)
        if self.action != "respond" and (self.retry_after is not None or self.retry_after_raw is not None):
            raise FieldError("FaultRule", "retry_after", "set only for action respond", self.retry_after)


@dataclass(frozen=True, slots=True)
class CapacityWindow:
    """A period of reduced capacity, in simulated seconds [start, end).

    `outage`: the server is down. New connections are refused, and requests queued or in
    service when it goes down lose their connection. `degraded`: `workers` workers (None keeps
    the configured number) and service times multiplied by `service_factor`.
    """

    start: float = field(metadata={"ge": 0, "unit": "s"})
    end: float = field(metadata={"gt": 0, "unit": "s"})
    kind: Literal["outage", "degraded"] = "outage"
    workers: int | None = field(default=None, metadata={"ge": 0})
    service_factor: float = field(default=1.0, metadata={"gt": 0})

    def __post_init__(self) -> None:
        check_fields(self)
        if self.end <= self.start:
            raise FieldError("CapacityWindow", "end", f"> start ({self.start})", self.end)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket in front of the queue: `rate` tokens per second, at most `burst` stored.

    A request that finds no token is answered `status` at once, with a Retry-After of the
    time until the next token, rounded up to whole seconds.
    """

    rate: float = field(metadata={"gt": 0, "unit": "1/s"})
    burst: int = field(default=1, metadata={"ge": 1})
    status: int = field(default=429, metadata={"ge": 400, "le": 599})

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The modelled job server: workers, queue, network and jobs. Times are in seconds."""

    workers: int = field(default=50, metadata={"ge": 1})
    """Requests served at once; one more request waits in the queue."""

    service_time: Distribution = field(default_factory=lambda: Constant(0.005))
    """Time a worker spends on one request, in seconds."""

    service_time_create: Distribution | None = None
    """Service time of `POST /create_job` if it differs from `service_time`, in seconds."""

    service_time_status: Distribution | None = None
    """Service time of `GET /status/...` if it differs from `service_time`, in seconds."""

    queue_limit: int = field(default=1000, metadata={"ge": 0})
    """Requests that may wait for a worker; a request arriving at a full queue is rejected."""

    queue_timeout: float | None = field(default=None, metadata={"gt": 0, "unit": "s"})
    """Longest wait in the queue; a request that waited longer is rejected when its turn comes."""

    reject_status: int = field(default=503, metadata={"ge": 400, "le": 599})
    """Status of a rejection (full queue or queue timeout): 503, or 429 as some APIs prefer."""

    reject_retry_after: bool = False
    """Whether a rejection carries Retry-After: the time to drain the queue at full capacity,
    rounded up to whole seconds."""

    rate_limit: RateLimit | None = None
    """Optional token bucket in front of the queue."""

    schedule: tuple[CapacityWindow, ...] = ()
    """Outage and degraded windows."""

    abandoned_work: Literal["keep", "drop"] = "keep"
    """What the server does with a queued request whose client timed out: `keep` serves it
    anyway (as most servers do, since they cannot tell), `drop` discards it unserved."""

    latency: Distribution = field(default_factory=lambda: Constant(0.001))
    """One-way network latency in seconds, from client to server (and back, unless
    `response_latency` is set)."""

    response_latency: Distribution | None = None
    """One-way latency from server to client if it differs from `latency`, in seconds."""

    drop_probability: float = field(default=0.0, metadata={"ge": 0, "le": 1})
    """Probability that the network drops a request's connection before it reaches the server;
    the client sees the server disconnect."""

    job_duration: Distribution = field(default_factory=lambda: LogNormal(median=10.0, sigma=0.5))
    """Work a job needs, in seconds, from creation (or from getting a job worker) until it ends."""

    job_workers: int | None = field(default=None, metadata={"ge": 1})
    """Jobs processed at once by the job pool, FIFO by creation; None runs every job at once."""

    job_error_probability: float = field(default=0.0, metadata={"ge": 0, "le": 1})
    """Probability that a job ends in `error` instead of `completed`."""

    stuck_job_probability: float = field(default=0.0, metadata={"ge": 0, "le": 1})
    """Probability that a job stays pending forever."""

    pending_retry_after: bool = False
    """Whether a pending status response carries Retry-After: the job's remaining time,
    rounded up to whole seconds, as long-running-operation APIs send."""

    idempotency_keys: bool = True
    """Whether a create with a known Idempotency-Key returns the job that key created."""

    faults: tuple[FaultRule, ...] = ()
    """Injected misbehaviour, checked in order; the first rule that fires wins."""

    model: str = "job_server"
    """Server model: "job_server" (`sim.server.ServerModel`) or a dotted path
    "package.module:Class" to a subclass of it."""

    options: dict[str, Any] = field(default_factory=dict)
    """Free-form settings handed to a custom server model."""

    host: str = "127.0.0.1"
    """Address `python -m sim serve` binds to."""

    port: int = field(default=8080, metadata={"ge": 0, "le": 65535})
    """Port `python -m sim serve` listens on; 0 picks a free one."""

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def capacity(self) -> float:
        """Requests per second the workers can serve: workers / mean service time.

        NOTE: uses `service_time` alone. Where `service_time_create` or `service_time_status`
        differ, the true capacity depends on the mix of endpoints, between the two rates.
        """
        mean = self.service_time.mean
        return math.inf if mean == 0 else self.workers / mean


@dataclass(frozen=True, slots=True)
class AtOnce:
    """Every client starts at time 0: a synchronized herd."""

    kind: ClassVar[str] = "at_once"


@dataclass(frozen=True, slots=True)
class UniformWindow:
    """Client start times drawn uniformly over [0, `window`) seconds."""

    kind: ClassVar[str] = "uniform"
    window: float = field(default=60.0, metadata={"gt": 0, "unit": "s"})

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class Poisson:
    """Clients arrive as a Poisson process of `rate` clients per second (an open workload)."""

    kind: ClassVar[str] = "poisson"
    rate: float = field(default=10.0, metadata={"gt": 0, "unit": "1/s"})

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of a `stages` arrival: the rate moves linearly to `target` over `duration`."""

    duration: float = field(metadata={"gt": 0, "unit": "s"})
    target: float = field(metadata={"ge": 0, "unit": "1/s"})

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class Stages:
    """Clients arrive at a rate that follows a list of stages, as k6's ramping arrival rate does.

    The rate starts at `start_rate` clients per second. Within each stage it moves linearly to
    the stage's `target` by the stage's end, so a stage whose target equals the rate before it
    keeps that rate. Arrivals end with the last stage, and `workload.clients` is a ceiling:
    arrivals past it are dropped and counted, like k6's dropped iterations. `spacing: poisson`
    draws arrivals as a Poisson process of that rate (independent users); `even` spaces them
    regularly, as k6 does.
    """

    kind: ClassVar[str] = "stages"
    stages: tuple[Stage, ...] = ()
    start_rate: float = field(default=0.0, metadata={"ge": 0, "unit": "1/s"})
    spacing: Literal["poisson", "even"] = "poisson"

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.stages:
            raise FieldError("Stages", "stages", "a non-empty list of {duration, target}", [])
        if self.expected_clients <= 0:
            rates = (self.start_rate, *(stage.target for stage in self.stages))
            raise FieldError("Stages", "stages", "a schedule whose start_rate or some target is above 0", rates)

    @property
    def expected_clients(self) -> float:
        """Mean number of arrivals over all stages: the area under the rate curve."""
        total, rate = 0.0, self.start_rate
        for stage in self.stages:
            total += 0.5 * (rate + stage.target) * stage.duration
            rate = stage.target
        return total

    @property
    def duration(self) -> float:
        """Seconds from the first stage's start to the last stage's end."""
        return math.fsum(stage.duration for stage in self.stages)


Arrival = AtOnce | UniformWindow | Poisson | Stages


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    """Who sends requests: `clients` virtual clients, each running `jobs_per_client` jobs."""

    clients: int = field(default=100, metadata={"ge": 1, "le": 10_000_000})
    """Virtual clients in the run; with `stages` arrivals, the most that may arrive. At most
    10 million: a run keeps about 740 bytes per request in memory, some 15 KB per polling client."""

    arrival: Arrival = field(default_factory=AtOnce)
    """When clients start. Every arrival kind is an open workload: starts never wait for the server."""

    jobs_per_client: int = field(default=1, metadata={"ge": 1})
    """Jobs each client runs one after another: a closed loop, since a slow server delays the next."""

    think_time: Distribution = field(default_factory=lambda: Constant(0.0))
    """Pause between one job's end and the client's next job, in seconds."""

    client: str = "translation"
    """Client coroutine each virtual client runs: "translation" (the real `TranslationClient`),
    "single_request", or a dotted path "package.module:function" (see `sim.clients`)."""

    options: dict[str, Any] = field(default_factory=dict)
    """Free-form settings handed to the client coroutine."""

    def __post_init__(self) -> None:
        check_fields(self)


MAX_BINS = 10_000_000
"""Most bins a run's time series may have: more would take gigabytes (8 bytes per bin in each column)."""


@dataclass(frozen=True, slots=True)
class RunConfig:
    """How the run is driven and recorded."""

    seed: int = field(default=0, metadata={"ge": 0})
    """Root of every random stream in the run."""

    duration: float | None = field(default=None, metadata={"gt": 0, "unit": "s"})
    """Simulated seconds after which unfinished jobs are stopped; None runs until all end."""

    bin_width: float = field(default=1.0, metadata={"ge": 0.001, "unit": "s"})
    """Width of the time-series bins, in simulated seconds; at least 1 ms."""

    warmup: float = field(default=0.0, metadata={"ge": 0, "unit": "s"})
    """Simulated seconds at the start excluded from the summary's statistics (the `server`
    counters are totals over the whole run)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.duration is not None and self.duration / self.bin_width > MAX_BINS:
            raise FieldError("RunConfig", "bin_width", f">= {self.duration / MAX_BINS:.3g} s for a duration of "
                             f"{self.duration} s, so that the time series has at most {MAX_BINS:,} bins",
                             self.bin_width)
        if self.duration is not None and self.warmup >= self.duration:
            raise FieldError("RunConfig", "warmup", f"< duration ({self.duration}), so that something is "
                             "measured; lower the warm-up or lengthen the run", self.warmup)


@dataclass(frozen=True, slots=True)
class Config:
    """A whole run: what the clients do, what the server can take, and how many clients come."""

    name: str = "run"
    client: ClientPolicy = field(default_factory=ClientPolicy)
    server: ServerConfig = field(default_factory=ServerConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def with_seed(self, seed: int) -> Config:
        """Return a copy that uses root seed `seed`."""
        return dataclasses.replace(self, run=dataclasses.replace(self.run, seed=seed))


# ----------------------------------------------------------------------------- errors


class ConfigError(ValueError):
    """A config that cannot run; `problems` lists every `path: message` found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        lines = [f"invalid config {source} ({count}); fix these and run again:"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))


# ----------------------------------------------------------------------------- loading


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file; the name defaults to the file's stem.

    Raises `ConfigError` naming every problem, or for a missing or unparsable file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found; check the path"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc}"]) from None

    # A named stream, so that PyYAML's messages give the file name rather than "<unicode string>".
    stream = io.StringIO(text)
    stream.name = str(path)
    try:
        data = yaml.load(stream, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(str(path), [str(exc)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None

    if data is None:
        data = {}
    if isinstance(data, dict) and "name" not in data:
        data = {"name": path.stem, **data}
    return config_from_dict(data, source=str(path), base_dir=path.parent)


class _DuplicateKey(ValueError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads YAML 1.2 numbers such as `5e-3`.

    PyYAML follows YAML 1.1, where `5e-3` (no dot, no sign on the exponent) is a string.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise _DuplicateKey(f"line {line}: duplicate key {key!r}; a later value would silently "
                                    "replace the earlier one, so keep one of them")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def config_from_dict(data: Any, *, source: str = "<dict>", base_dir: str | Path | None = None) -> Config:
    """Validate a config given as nested dicts (as parsed from YAML) and build it.

    Files the config names (an empirical distribution's samples) are read relative to
    `base_dir`, by default the working directory.
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(source, [f"the top level must be a mapping of sections; got {_show(data)}"])
    token = _BASE_DIR.set(Path(base_dir) if base_dir is not None else Path.cwd())
    try:
        config = _build_dataclass(Config, data, "", problems)
    finally:
        _BASE_DIR.reset(token)
    if problems:
        raise ConfigError(source, problems)
    return config


def config_to_dict(config: Any) -> Any:
    """Convert a config (or any part of it) to plain dicts and lists, defaults included.

    Distributions and arrivals carry their `kind`, so the output loads back to an equal config.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        out: dict[str, Any] = {}
        kind = getattr(type(config), "kind", None)
        if isinstance(kind, str):
            out["kind"] = kind
        for spec in dataclasses.fields(config):
            out[spec.name] = config_to_dict(getattr(config, spec.name))
        return out
    if isinstance(config, enum.Enum):
        return config.value
    if isinstance(config, tuple):
        return [config_to_dict(item) for item in config]
    return config


def override(config: Config, changes: Mapping[str, Any], *, source: str = "<overrides>") -> Config:
    """Return a copy of `config` with fields replaced by dotted path, validated like a file.

        override(config, {"client.poll.jitter": "none", "workload.clients": 2000})

    A value may be a plain value, a dict (a whole section or distribution) or a config object
    such as a `Backoff`. Raises `ConfigError` naming the path, as loading a file does, for an
    unknown key or a value that breaks a rule.
    """
    if not isinstance(changes, Mapping):
        raise ConfigError(source, [f"overrides: expected a mapping of dotted paths to values, such as "
                                   f"{{'client.poll.jitter': 'none'}}; got {_show(changes)}"])
    data = config_to_dict(config)
    for dotted, value in changes.items():
        if not isinstance(dotted, str) or not dotted or "" in dotted.split("."):
            raise ConfigError(source, [f"{dotted!r}: invalid override path; use dotted keys such as "
                                       "'client.poll.jitter'"])
        *parents, last = dotted.split(".")
        node = data
        for depth, part in enumerate(parents):
            child = node.get(part)
            if not isinstance(child, dict):
                if part in node and child is not None:
                    where = ".".join(parents[:depth + 1])
                    raise ConfigError(source, [f"{dotted}: {where} is a single value ({_show(child)}), "
                                               f"not a section; set {where} itself"])
                child = node[part] = {}
            node = child
        node[last] = config_to_dict(value)
    return config_from_dict(data, source=source)


# ----------------------------------------------------------------------------- validation

_MISSING = object()

_BASE_DIR: contextvars.ContextVar[Path] = contextvars.ContextVar("config_base_dir")
"""Directory that relative file paths in the config being built are read from."""


def _build_dataclass(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    where = path or "the top level"
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping of keys to values; got {_show(data)}")
        return _MISSING

    specs = {spec.name: spec for spec in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    before = len(problems)

    for key in data:
        if key == "kind" and isinstance(getattr(cls, "kind", None), str):
            continue
        if key not in specs:
            problems.append(_unknown_key(key, path, list(specs)))

    for name, spec in specs.items():
        if name not in data:
            continue
        value = _convert(hints[name], data[name], _join(path, name), spec.metadata, problems)
        if value is not _MISSING:
            kwargs[name] = value

    for name, spec in specs.items():
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        if required and name not in data:
            kind = getattr(cls, "kind", None)
            context = f" for kind {kind}" if isinstance(kind, str) else ""
            problems.append(f"{_join(path, name)}: missing; this key is required{context}")

    if len(problems) > before:
        return _MISSING
    try:
        return cls(**kwargs)
    except FieldError as exc:
        problems.append(f"{_join(path, exc.field)}: must be {exc.rule}; got {_show(exc.value)}")
    except (TypeError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
    return _MISSING


def _convert(hint: Any, value: Any, path: str, metadata: Any, problems: list[str]) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        # A numpy scalar, as pandas rows and numpy grids hand out: check its Python value.
        value = value.item()
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)

    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        if value is None:
            if type(None) in args:
                return None
            problems.append(f"{path}: must not be null")
            return _MISSING
        if all(isinstance(getattr(option, "kind", None), str) for option in options):
            return _convert_kind(options, value, path, problems)
        if len(options) == 1:
            return _convert(options[0], value, path, metadata, problems)
        raise TypeError(f"unsupported union in the config schema at {path}: {hint!r}")

    if origin is Literal:
        if value in args and isinstance(value, str):
            return value
        choices = ", ".join(str(arg) for arg in args)
        problems.append(f"{path}: must be one of {choices}; got {_show(value)}")
        return _MISSING

    if origin is tuple:
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list; got {_show(value)}")
            return _MISSING
        items = [_convert(args[0], item, f"{path}[{index}]", {}, problems) for index, item in enumerate(value)]
        return _MISSING if any(item is _MISSING for item in items) else tuple(items)

    if dataclasses.is_dataclass(hint):
        return _build_dataclass(hint, value, path, problems)

    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        choices = [member.value for member in hint]
        if value in choices:
            return hint(value)
        problems.append(f"{path}: must be one of {', '.join(map(str, choices))}; got {_show(value)}")
        return _MISSING

    if hint is bool:
        if isinstance(value, bool):
            return value
        problems.append(f"{path}: expected true or false; got {_show(value)}")
        return _MISSING

    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer; got {_show(value)}")
            return _MISSING
        return _check_range(value, path, metadata, problems)

    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number; got {_show(value)}")
            return _MISSING
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            problems.append(f"{path}: expected a finite number; got {_show(value)}")
            return _MISSING
        return _check_range(value, path, metadata, problems)

    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            problems.append(f"{path}: expected a mapping with string keys; got {_show(value)}")
            return _MISSING
        return dict(value)

    if hint is str:
        if isinstance(value, str):
            return value
        problems.append(f"{path}: expected a string; got {_show(value)}")
        return _MISSING

    raise TypeError(f"unsupported type in the config schema at {path}: {hint!r}")


def _convert_kind(options: list[type], value: Any, path: str, problems: list[str]) -> Any:
    """Build one of several dataclasses told apart by their `kind` key."""
    kinds = {option.kind: option for option in options}
    if "constant" in kinds and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = {"kind": "constant", "value": value}
    if isinstance(value, str) and value in kinds:
        value = {"kind": value}
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a mapping with a kind ({', '.join(kinds)}); got {_show(value)}")
        return _MISSING
    kind = value.get("kind")
    if kind not in kinds:
        hint = _suggest(kind, list(kinds)) if isinstance(kind, str) else ""
        problems.append(f"{path}.kind: must be one of {', '.join(kinds)}; got {_show(kind)}{hint}")
        return _MISSING
    if kinds[kind] is Empirical:
        value = _read_empirical(value, path, problems)
        if value is _MISSING:
            return _MISSING
    return _build_dataclass(kinds[kind], value, path, problems)


_EMPIRICAL_KEYS = ("samples", "file", "column", "unit")


def _read_empirical(value: dict[str, Any], path: str, problems: list[str]) -> Any:
    """Turn an empirical distribution's `file`, `column` and `unit` into `samples` in seconds."""
    unknown = [key for key in value if key not in (*_EMPIRICAL_KEYS, "kind")]
    for key in unknown:
        problems.append(_unknown_key(key, path, list(_EMPIRICAL_KEYS)))
    has_file, has_samples = "file" in value, "samples" in value
    if has_file == has_samples:
        problems.append(f"{path}: give exactly one of samples (a list of numbers) or file (a path); "
                        f"got {'both' if has_file else 'neither'}")
        return _MISSING
    if unknown:
        return _MISSING

    unit = value.get("unit", "s")
    column = value.get("column")
    if not isinstance(unit, str):
        problems.append(f"{path}.unit: must be one of s, ms, us; got {_show(unit)}")
        return _MISSING
    if column is not None and not isinstance(column, str):
        problems.append(f"{path}.column: expected a string naming a CSV column; got {_show(column)}")
        return _MISSING

    if has_file:
        if not isinstance(value["file"], str):
            problems.append(f"{path}.file: expected a path as a string; got {_show(value['file'])}")
            return _MISSING
        try:
            samples = read_samples(_BASE_DIR.get() / value["file"], column, unit)
        except SampleFileError as exc:
            problems.append(f"{path}.{exc.key}: {exc}")
            return _MISSING
        return {"kind": "empirical", "samples": list(samples)}

    if column is not None:
        problems.append(f"{path}.column: only applies with file; got {_show(column)}")
        return _MISSING
    samples = value["samples"]
    if not isinstance(samples, list):
        problems.append(f"{path}.samples: expected a list of numbers; got {_show(samples)}")
        return _MISSING
    if unit == "s":
        return {"kind": "empirical", "samples": samples}
    try:
        scale = SAMPLE_UNITS[unit]
    except KeyError:
        problems.append(f"{path}.unit: must be one of s, ms, us; got {_show(unit)}")
        return _MISSING
    numbers = all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in samples)
    return {"kind": "empirical", "samples": [item * scale for item in samples] if numbers else samples}


def _check_range(value: Any, path: str, metadata: Any, problems: list[str]) -> Any:
    rule = violated_rule(value, metadata)
    if rule is None:
        return value
    if isinstance(value, int):
        rule = rule.replace("a finite number", "an integer")
    problems.append(f"{path}: must be {rule}; got {_show(value)}")
    return _MISSING


def _unknown_key(key: Any, path: str, valid: list[str]) -> str:
    where = f"in {path}" if path else "at the top level"
    if not valid:
        return f"{_join(path, str(key))}: unknown key {where}, which takes no settings besides its kind"
    hint = _suggest(str(key), valid)
    return f"{_join(path, str(key))}: unknown key {where}{hint}; valid keys are {', '.join(valid)}"


def _suggest(key: str, valid: list[str]) -> str:
    matches = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return repr(value)
