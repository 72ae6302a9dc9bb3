"""The polling-herd scenario that `simpy_compare.py` and `scale.py` both run.

Every client starts at simulated time 0 (`arrival: at_once`) and runs one job with the real
`TranslationClient`. It sends `POST /create_job`, then `GET /status/{id}` at once. After each
pending response it sleeps a full-jitter delay `U(0, min(30, 1 * 2**(n - 1)))` seconds before
poll n + 1, and it stops when a poll returns `completed`. The server has one worker per 100
clients (50 for 5,000), and each request occupies one for a constant 5 ms. Scaling the workers
with the clients keeps the utilisation and the queue waits the same at every size, so the
requests per client stay the same too. The FIFO queue never rejects a request, because its
limit equals the client count and a client has at most one request in flight. There is no
network latency and no fault.

Every job lasts a constant 205 s from its creation. A Monte Carlo estimate of the polling
schedule alone (20,000 clients, no queueing) gives a mean of 20.3 requests per client, so
100,000 clients send about 2.03 million requests. Request and job timeouts are far longer
than any wait in this scenario. `measure_herdsim` raises `ScenarioError` if a request or job
failed anyway, because then the run is not the workload the benchmarks claim to measure.

This module is imported by the scripts beside it and is not run on its own.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass

import numpy as np

from sim.config import Config, config_from_dict
from sim.engine import SimulationData
from sim.recorder import JOB_OUTCOMES, NO_ERROR

__all__ = [
    "CLIENTS_PER_WORKER",
    "Measurements",
    "Scenario",
    "ScenarioError",
    "herdsim_config",
    "max_rss_bytes",
    "measure_herdsim",
    "scaled_scenario",
    "summarize",
]

CLIENTS_PER_WORKER = 100

_COMPLETED = JOB_OUTCOMES.index("completed")


@dataclass(frozen=True)
class Scenario:
    """Parameters of the polling herd, with times in simulated seconds."""

    clients: int = 5000
    seed: int = 1
    workers: int = 50
    """Worker count; `scaled_scenario` sets one per `CLIENTS_PER_WORKER` clients."""
    service_time: float = 0.005
    """Constant time a request occupies a worker, in seconds."""
    job_duration: float = 205.0
    """Constant time from a job's creation (the end of its create request's service) to its end."""
    poll_initial: float = 1.0
    """Cap of the first poll delay, `e(1)`, in seconds."""
    poll_multiplier: float = 2.0
    poll_maximum: float = 30.0
    """Cap of every poll delay, in seconds."""
    request_timeout: float = 10.0
    """Seconds one request may take, as in `ClientPolicy`'s default. The at-once start queues
    every client's create, so the last create waits about clients * 5 ms / workers, 0.5 s."""
    # Request timeouts wait in the server's timer lane, outside the loop's heap, so their
    # length does not change herdsim's cost.
    total_timeout: float = 600.0
    """Seconds a whole job may take, as in `ClientPolicy`'s default. A job here takes 205 to 240 s."""

    def describe(self) -> str:
        """Return a one-line summary of all but the client and worker counts, for a report header."""
        return (
            f"clients start at once, seed {self.seed}; each request holds a worker "
            f"{self.service_time * 1000:g} ms, FIFO, no latency; job {self.job_duration:g} s; "
            f"full-jitter polls {self.poll_initial:g} s x{self.poll_multiplier:g}, "
            f"cap {self.poll_maximum:g} s"
        )


class ScenarioError(RuntimeError):
    """Raised when a run did not stay within the scenario: a request or job failed."""


@dataclass(frozen=True)
class Measurements:
    """Figures of one run of the scenario, filled in the same way by either model."""

    requests: int
    """Requests sent, creates and polls together."""
    end_time: float
    """Simulated seconds when the last client finished."""
    latency_p50: float
    """Median completion latency (client start to the `completed` response), in seconds."""
    latency_p99: float
    """99th-percentile completion latency, in seconds."""


def scaled_scenario(clients: int, seed: int = 1) -> Scenario:
    """Return the scenario for `clients` clients with one worker per `CLIENTS_PER_WORKER` clients."""
    return Scenario(clients=clients, seed=seed, workers=max(1, round(clients / CLIENTS_PER_WORKER)))


def herdsim_config(scenario: Scenario) -> Config:
    """Build the herdsim `Config` of `scenario`, validated as a YAML config would be."""
    poll = {
        "initial": scenario.poll_initial,
        "multiplier": scenario.poll_multiplier,
        "maximum": scenario.poll_maximum,
        "jitter": "full",
    }
    return config_from_dict({
        "name": f"polling-herd-{scenario.clients}",
        "client": {
            "poll": poll,
            # No request fails in this scenario, so the retry schedule is never used.
            "retry": poll,
            "max_attempts": 6,
            "total_timeout": scenario.total_timeout,
            "request_timeout": scenario.request_timeout,
        },
        "server": {
            "workers": scenario.workers,
            "service_time": {"kind": "constant", "value": scenario.service_time},
            # A client has at most one request in flight, so this limit never rejects.
            "queue_limit": scenario.clients,
            "latency": 0.0,
            "job_duration": {"kind": "constant", "value": scenario.job_duration},
            "job_error_probability": 0.0,
        },
        "workload": {
            "clients": scenario.clients,
            "arrival": {"kind": "at_once"},
        },
        "run": {"seed": scenario.seed},
    }, source=f"benchmark scenario ({scenario.clients} clients)")


def measure_herdsim(data: SimulationData) -> Measurements:
    """Read the request count and completion latencies from a run's recorder.

    Raises `ScenarioError` if a job did not complete or a request did not get HTTP 200.
    """
    recorder = data.recorder
    requests = recorder.request_count

    status = np.frombuffer(recorder.request_status, dtype=np.int16)
    error = np.frombuffer(recorder.request_error, dtype=np.uint8)
    not_ok = int(np.count_nonzero((status != 200) | (error != NO_ERROR)))
    if not_ok:
        raise ScenarioError(f"{not_ok:,} of {requests:,} requests did not get HTTP 200; "
                            "the scenario expects every request to succeed")

    outcome = np.frombuffer(recorder.job_outcome, dtype=np.uint8)
    jobs = len(outcome)
    completed = int(np.count_nonzero(outcome == _COMPLETED))
    if jobs != data.clients_started or completed != jobs:
        raise ScenarioError(f"{completed:,} of {jobs:,} jobs completed for {data.clients_started:,} "
                            "clients; the scenario expects one completed job per client")

    started_at = np.frombuffer(recorder.job_started_at, dtype=np.float64)
    finished_at = np.frombuffer(recorder.job_finished_at, dtype=np.float64)
    return summarize(requests, data.end_time, finished_at - started_at)


def summarize(requests: int, end_time: float, latencies: np.ndarray) -> Measurements:
    """Build `Measurements` from a request count and the completion latencies in seconds."""
    p50, p99 = np.percentile(latencies, [50, 99])
    return Measurements(requests=requests, end_time=end_time, latency_p50=float(p50), latency_p99=float(p99))


def max_rss_bytes() -> int:
    """Return this process's peak resident set size so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports ru_maxrss in kibibytes, macOS in bytes.
    return peak if sys.platform == "darwin" else peak * 1024
