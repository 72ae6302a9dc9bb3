"""The run's summary: headline figures computed from the tables.

Every figure is computed from the recorded data exactly (percentiles by linear interpolation
between order statistics, numpy's default), not from histograms. Times are simulated seconds;
wall-clock figures are kept apart in `timing(...)` because they differ between runs of the same
config and seed.
"""

from __future__ import annotations

import math
import platform
import sys
from typing import Any

import numpy as np
import pandas as pd

from sim import __version__
from sim.engine import SimulationData
from sim.recorder import ENDPOINTS
from sim.tables import REQUEST_OUTCOMES, time_weighted, wasted_mask

__all__ = ["HEADLINE", "headline", "summarize", "timing", "PERCENTILES"]

PERCENTILES = (50, 90, 99)


def distribution(values: np.ndarray | pd.Series) -> dict[str, Any]:
    """Count, mean, p50, p90, p99 and max of the finite `values`; None where there are none."""
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    out: dict[str, Any] = {"count": int(array.size)}
    if array.size == 0:
        out.update({"mean": None, **{f"p{p}": None for p in PERCENTILES}, "max": None})
        return out
    out["mean"] = _number(array.mean())
    for p, value in zip(PERCENTILES, np.percentile(array, PERCENTILES)):
        out[f"p{p}"] = _number(value)
    out["max"] = _number(array.max())
    return out


def summarize(data: SimulationData, requests: pd.DataFrame, jobs: pd.DataFrame,
              timeseries: pd.DataFrame) -> dict[str, Any]:
    """Build the contents of `summary.json`: the same for the same config and seed.

    Statistics cover the measured window: jobs started and requests sent at or after
    `run.warmup`, and time-weighted server state from the warm-up to the end. The `server`
    counters are totals over the whole run.
    """
    config = data.config
    server = data.server
    capacity = config.server.capacity
    warmup = config.run.warmup

    jobs = jobs[jobs["started_at"] >= warmup]
    requests = requests[requests["sent_at"] >= warmup]
    timeseries = timeseries[timeseries["time"] >= warmup]

    outcome_counts = jobs["outcome"].value_counts().reindex(list(jobs["outcome"].cat.categories), fill_value=0)
    completed = jobs["outcome"] == "completed"
    rate = timeseries["request_rate"].to_numpy()
    peak_bin = int(np.argmax(rate)) if rate.size else 0
    peak_rate = float(rate[peak_bin]) if rate.size else 0.0

    request_outcomes = requests["outcome"].value_counts().reindex(list(REQUEST_OUTCOMES), fill_value=0)
    endpoints = requests["endpoint"].value_counts().reindex(list(ENDPOINTS), fill_value=0)
    known_jobs = set(data.recorder.job_number.tolist()) - {-1}

    return {
        "name": config.name,
        "seed": config.run.seed,
        "simulated_seconds": _number(data.end_time),
        "warmup_s": warmup,
        "clients": {
            "configured": config.workload.clients,
            "started": data.clients_started,
            "arrivals_dropped": data.arrivals_dropped,
        },
        "jobs": {
            "total": int(len(jobs)),
            "outcomes": {name: int(count) for name, count in outcome_counts.items()},
        },
        "completion_latency_s": distribution(jobs.loc[completed, "latency"]),
        "detection_delay_s": distribution(jobs["detection_delay"]),
        "requests_per_job": distribution(jobs["requests"]),
        "requests": {
            "total": int(len(requests)),
            "by_endpoint": {name: int(count) for name, count in endpoints.items() if name != "other" or count},
            "by_outcome": {name: int(count) for name, count in request_outcomes.items()},
            "retries": int((requests["attempt"] > 1).sum()),
            "resent_after_disconnect": data.recorder.resends,
        },
        "server": {
            "workers": config.server.workers,
            "capacity_rps": _number(capacity),
            "received": server.received,
            "served": server.served,
            "rejected_queue_full": server.rejected,
            "faulted": server.faulted,
            "wasted_responses": server.wasted,
            "refused_while_down": server.refused,
            "rate_limited": server.rate_limited,
            "network_dropped": server.network_dropped,
            "abandoned_dropped": server.abandoned_dropped,
            "wasted_work": wasted_work(requests),
            "jobs_created": len(server.jobs),
            "orphan_jobs": len(server.jobs) - len(known_jobs),
            "queue_length_max": _number(timeseries["queue_length_max"].max()) if len(timeseries) else 0.0,
        },
        "queueing": queueing(data, requests, warmup),
        "capacity_windows": capacity_windows(data, timeseries),
        "peak_request_rate": {
            "requests_per_second": _number(peak_rate),
            "at_s": _number(float(timeseries["time"].iloc[peak_bin]) if len(timeseries) else 0.0),
            "bin_width_s": config.run.bin_width,
            "capacity_rps": _number(capacity),
            "ratio_to_capacity": _number(peak_rate / capacity) if 0 < capacity < math.inf else None,
        },
    }


def wasted_work(requests: pd.DataFrame) -> dict[str, Any]:
    """Service the server spent on requests whose client had already stopped waiting."""
    mask = wasted_mask(requests)
    service = (requests["service_ended_at"] - requests["service_started_at"]).to_numpy()
    served = ~np.isnan(service)
    total = float(service[served].sum())
    wasted = float(service[mask].sum())
    return {
        "requests": int(mask.sum()),
        "service_s": _number(wasted),
        "fraction_of_service": _number(wasted / total) if total > 0 else 0.0,
    }


def capacity_windows(data: SimulationData, timeseries: pd.DataFrame) -> list[dict[str, Any]]:
    """For each outage or degraded window: the request peak after it and how long the queue took to drain.

    `drain_s` is the time from the window's end to the start of the first bin, after the
    backlog built up, in which the queue stayed empty (its maximum is 0): 0 if no backlog built
    up, None if the queue never emptied before the run ended.
    """
    out = []
    times = timeseries["time"].to_numpy()
    width = data.config.run.bin_width
    for window in data.config.server.schedule:
        after = times >= window.end
        recovery = after & (times < window.end + 30.0)
        rate = timeseries["request_rate"].to_numpy()
        queue = timeseries["queue_length_max"].to_numpy()
        busy = np.flatnonzero(after & (queue > 0))
        # Drained: the first empty bin after the backlog that built up once the window ended.
        drained = times[(times > times[busy[0]]) & (queue == 0)] if busy.size else np.array([window.end])
        out.append({
            "kind": window.kind,
            "start_s": window.start,
            "end_s": window.end,
            "peak_rate_after_rps": _number(float(rate[recovery].max())) if recovery.any() else None,
            "drain_s": _number(max(0.0, float(drained[0]) - window.end)) if drained.size else None,
            "bin_width_s": width,
        })
    return out


def queueing(data: SimulationData, requests: pd.DataFrame, start: float) -> dict[str, Any]:
    """Queueing figures of the server over [start, end], for checks against queueing theory.

    Only requests that a worker served count (rejected and faulted ones never queue). Little's
    law says `in_system_mean = arrival_rate * time_in_system_mean` for a stable system, so
    `littles_law_ratio` should be close to 1.
    """
    end = data.end_time
    window = end - start
    served = requests[(requests["arrived_at"] >= start) & requests["service_ended_at"].notna()]
    arrived = requests[(requests["arrived_at"] >= start) & (requests["admission"] == "admitted")]
    wait = (served["service_started_at"] - served["arrived_at"]).to_numpy()
    in_system = (served["service_ended_at"] - served["arrived_at"]).to_numpy()

    recorder = data.recorder
    times = np.frombuffer(recorder.state_time, dtype=np.float64)
    edges = np.array([start, end])
    if window > 0:
        queue_mean = float(time_weighted(times, np.frombuffer(recorder.state_queue, dtype=np.int64).astype(float), edges)[0][0])
        busy_mean = float(time_weighted(times, np.frombuffer(recorder.state_busy, dtype=np.int64).astype(float), edges)[0][0])
        arrival_rate = len(arrived) / window
    else:
        queue_mean = busy_mean = arrival_rate = math.nan
    time_in_system = float(in_system.mean()) if in_system.size else math.nan
    product = arrival_rate * time_in_system
    return {
        "window_s": _number(window),
        "arrival_rate_rps": _number(arrival_rate),
        "time_in_system_mean_s": _number(time_in_system),
        "wait_in_queue_mean_s": _number(float(wait.mean()) if wait.size else math.nan),
        "probability_of_wait": _number(float((wait > 0).mean()) if wait.size else math.nan),
        "queue_length_mean": _number(queue_mean),
        "busy_workers_mean": _number(busy_mean),
        "in_system_mean": _number(queue_mean + busy_mean),
        "utilization": _number(busy_mean / data.config.server.workers),
        "littles_law_ratio": _number((queue_mean + busy_mean) / product) if product > 0 else None,
    }


HEADLINE = {
    "jobs": "jobs started after the warm-up",
    "completed_fraction": "share of jobs that ended completed",
    "timeout_rate": "share of jobs that ended because the total timeout ran out",
    "failed_fraction": "share of jobs that did not complete, for any reason",
    "completion_mean_s": "mean completion latency of completed jobs, s",
    "completion_p50_s": "median completion latency, s",
    "completion_p90_s": "90th percentile of completion latency, s",
    "completion_p99_s": "99th percentile of completion latency, s",
    "detection_delay_mean_s": "mean time from a job's end on the server to the client seeing it, s",
    "detection_delay_p50_s": "median detection delay, s",
    "detection_delay_p99_s": "99th percentile of detection delay, s",
    "requests": "requests sent after the warm-up",
    "requests_per_job_mean": "mean requests per job, retries and polls included",
    "requests_per_job_p99": "99th percentile of requests per job",
    "retries": "requests that were retries of a failed attempt",
    "rejected": "requests the server turned away: queue full, rate limited or down",
    "peak_rate_rps": "highest request rate in one time bin, requests per simulated second",
    "peak_to_capacity": "peak request rate divided by the server's capacity",
    "wasted_work_fraction": "share of service spent on requests whose client had given up",
    "drain_s": "seconds after the first outage or degraded window until the queue drained",
    "peak_after_window_rps": "peak request rate within 30 s after that window, requests per second",
    "simulated_s": "simulated seconds until the last client finished",
}
"""Headline metrics of a run, by name, with their meaning and unit: one row of a sweep."""


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """Return the `HEADLINE` metrics of a run, flat, from its `summary.json` contents.

    Shares are None when there are no jobs; latency figures are None when no job completed.
    """
    jobs = summary["jobs"]
    total = jobs["total"]
    outcomes = jobs["outcomes"]
    completed = outcomes.get("completed", 0)
    server = summary["server"]
    peak = summary["peak_request_rate"]
    windows = summary["capacity_windows"]

    def share(count: int) -> float | None:
        return round(count / total, 6) if total else None

    return {
        "jobs": total,
        "completed_fraction": share(completed),
        "timeout_rate": share(outcomes.get("timeout", 0)),
        "failed_fraction": share(total - completed),
        "completion_mean_s": summary["completion_latency_s"]["mean"],
        "completion_p50_s": summary["completion_latency_s"]["p50"],
        "completion_p90_s": summary["completion_latency_s"]["p90"],
        "completion_p99_s": summary["completion_latency_s"]["p99"],
        "detection_delay_mean_s": summary["detection_delay_s"]["mean"],
        "detection_delay_p50_s": summary["detection_delay_s"]["p50"],
        "detection_delay_p99_s": summary["detection_delay_s"]["p99"],
        "requests": summary["requests"]["total"],
        "requests_per_job_mean": summary["requests_per_job"]["mean"],
        "requests_per_job_p99": summary["requests_per_job"]["p99"],
        "retries": summary["requests"]["retries"],
        "rejected": server["rejected_queue_full"] + server["rate_limited"] + server["refused_while_down"],
        "peak_rate_rps": peak["requests_per_second"],
        "peak_to_capacity": peak["ratio_to_capacity"],
        "wasted_work_fraction": server["wasted_work"]["fraction_of_service"],
        "drain_s": windows[0]["drain_s"] if windows else None,
        "peak_after_window_rps": windows[0]["peak_rate_after_rps"] if windows else None,
        "simulated_s": summary["simulated_seconds"],
    }


def timing(data: SimulationData, requests_total: int) -> dict[str, Any]:
    """Build the contents of `timing.json`: wall-clock figures, which vary between runs."""
    wall = data.wall_seconds
    return {
        "wall_seconds": round(wall, 4),
        "simulated_seconds": _number(data.end_time),
        "simulated_requests_per_wall_second": round(requests_total / wall, 1) if wall > 0 else None,
        "events": data.events,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "herdsim": __version__,
    }


def _number(value: float) -> float | None:
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, 6)
