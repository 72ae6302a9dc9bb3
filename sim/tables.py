"""Turn recorded columns into the run's tables: requests, jobs and the time series.

Categorical columns use a fixed list of categories, so two runs write the same Parquet schema
whatever values happen to occur. Times are simulated seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.config import MAX_BINS
from sim.engine import SimulationData
from sim.recorder import ADMISSIONS, ENDPOINTS, ERRORS, JOB_OUTCOMES, NO_ERROR, Recorder

__all__ = [
    "REQUEST_OUTCOMES",
    "jobs_frame",
    "requests_frame",
    "timeseries_frame",
    "bin_edges",
    "time_weighted",
    "wasted_mask",
]

REQUEST_OUTCOMES = ("ok", "client_error", "server_error", "timeout", "connection_error", "unfinished")
"""Request outcomes as the client saw them: a 2xx, 4xx or 5xx response, or no response."""

SERVER_JOB_OUTCOMES = ("completed", "error", "none")


def _categorical(codes: np.ndarray, categories: tuple[str, ...]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=list(categories))


def request_outcome_codes(status: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Return each request's index into `REQUEST_OUTCOMES`."""
    codes = np.full(len(status), REQUEST_OUTCOMES.index("unfinished"), dtype=np.int8)
    answered = error == NO_ERROR
    codes[answered & (status < 400)] = REQUEST_OUTCOMES.index("ok")
    codes[answered & (status >= 400) & (status < 500)] = REQUEST_OUTCOMES.index("client_error")
    codes[answered & (status >= 500)] = REQUEST_OUTCOMES.index("server_error")
    codes[error == ERRORS.index("timeout")] = REQUEST_OUTCOMES.index("timeout")
    codes[error == ERRORS.index("connection_error")] = REQUEST_OUTCOMES.index("connection_error")
    return codes


def requests_frame(recorder: Recorder) -> pd.DataFrame:
    """Build the requests table: one row per request, who sent it, when, and how it ended."""
    status = np.frombuffer(recorder.request_status, dtype=np.int16).copy()
    error = np.frombuffer(recorder.request_error, dtype=np.uint8).copy()
    sent_at = np.frombuffer(recorder.request_sent_at, dtype=np.float64).copy()
    finished_at = np.frombuffer(recorder.request_finished_at, dtype=np.float64).copy()
    return pd.DataFrame({
        "client": np.frombuffer(recorder.request_client, dtype=np.int64).astype(np.int32),
        "job": np.frombuffer(recorder.request_job, dtype=np.int64).copy(),
        "endpoint": _categorical(np.frombuffer(recorder.request_endpoint, dtype=np.uint8), ENDPOINTS),
        "sent_at": sent_at,
        "finished_at": finished_at,
        "latency": finished_at - sent_at,
        "status": status,
        "outcome": _categorical(request_outcome_codes(status, error), REQUEST_OUTCOMES),
        "admission": _categorical(np.frombuffer(recorder.request_admission, dtype=np.uint8), ADMISSIONS),
        "attempt": np.frombuffer(recorder.request_attempt, dtype=np.int16).copy(),
        "arrived_at": np.frombuffer(recorder.request_arrived_at, dtype=np.float64).copy(),
        "service_started_at": np.frombuffer(recorder.request_service_started_at, dtype=np.float64).copy(),
        "service_ended_at": np.frombuffer(recorder.request_service_ended_at, dtype=np.float64).copy(),
    })


def jobs_frame(data: SimulationData) -> pd.DataFrame:
    """Build the jobs table: one row per client job, joined with the server's record of the job.

    `latency` is the completion latency (outcome known minus start). `detection_delay` is how
    long after the job ended on the server the client learned it; NaN where the client did not.
    """
    recorder = data.recorder
    jobs = data.server.jobs
    number = np.frombuffer(recorder.job_number, dtype=np.int64).copy()
    started_at = np.frombuffer(recorder.job_started_at, dtype=np.float64).copy()
    finished_at = np.frombuffer(recorder.job_finished_at, dtype=np.float64).copy()
    outcome = np.frombuffer(recorder.job_outcome, dtype=np.uint8).copy()

    created = np.frombuffer(jobs.created_at, dtype=np.float64)
    # A custom client may record its own job keys; only numbers the job table has are joined.
    known = (number >= 0) & (number < len(created))
    ends = np.frombuffer(jobs.finishes_at, dtype=np.float64)
    failed = np.frombuffer(bytes(jobs.failed), dtype=np.uint8)
    server_created_at = np.full(len(number), np.nan)
    server_finished_at = np.full(len(number), np.nan)
    server_outcome = np.full(len(number), SERVER_JOB_OUTCOMES.index("none"), dtype=np.int8)
    server_created_at[known] = created[number[known]]
    server_finished_at[known] = ends[number[known]]
    server_outcome[known] = failed[number[known]]

    saw_end = (outcome == JOB_OUTCOMES.index("completed")) | (outcome == JOB_OUTCOMES.index("error"))
    detection_delay = np.where(saw_end, finished_at - server_finished_at, np.nan)

    frame = pd.DataFrame({
        "client": np.frombuffer(recorder.job_client, dtype=np.int64).astype(np.int32),
        "job": number,
        "started_at": started_at,
        "finished_at": finished_at,
        "latency": finished_at - started_at,
        "outcome": _categorical(outcome, tuple(recorder.outcome_names)),
        "requests": np.frombuffer(recorder.job_requests, dtype=np.int64).astype(np.int32),
        "retries": np.frombuffer(recorder.job_retries, dtype=np.int64).astype(np.int32),
        "polls": np.frombuffer(recorder.job_polls, dtype=np.int64).astype(np.int32),
        "server_created_at": server_created_at,
        "server_finished_at": server_finished_at,
        "server_outcome": _categorical(server_outcome, SERVER_JOB_OUTCOMES),
        "detection_delay": detection_delay,
    })
    # Clients finish in simulated-time order; sorting by client number gives a stable layout.
    return frame.sort_values("client", kind="stable").reset_index(drop=True)


def wasted_mask(requests: pd.DataFrame) -> np.ndarray:
    """Return True for requests a worker served after their client had stopped waiting."""
    ended = requests["service_ended_at"].to_numpy()
    gave_up = requests["finished_at"].to_numpy()
    unanswered = requests["outcome"].isin(["timeout", "unfinished"]).to_numpy()
    # A client that timed out finished before the service ended; NaN compares False.
    return ~np.isnan(ended) & unanswered & ~(gave_up >= ended)


def bin_edges(end_time: float, width: float) -> np.ndarray:
    """Return bin edges `k * width` for k = 0..n, covering [0, end_time] with at least one bin.

    Edges are integer multiples of the width, computed by multiplication rather than repeated
    addition, so float drift never moves an event across a boundary.
    """
    count = max(1, int(np.ceil(end_time / width)))
    if count * width <= end_time:
        count += 1
    if count > MAX_BINS:
        # Reached only by a run without a duration, whose length the config cannot bound.
        raise ValueError(f"run.bin_width: {width} s gives {count:,} bins over the {end_time:,.1f} s simulated, "
                         f"more than {MAX_BINS:,}; use a bin width of at least {end_time / MAX_BINS:.3g} s")
    return np.arange(count + 1, dtype=np.float64) * width


def timeseries_frame(data: SimulationData, requests: pd.DataFrame) -> pd.DataFrame:
    """One row per time bin: requests sent by endpoint and outcome, and server state.

    Request counts are by send time. `queue_length_mean` and `busy_workers_mean` are averages
    over the bin weighted by time (the integral of the state over the bin divided by its width);
    the `_max` columns are the largest value the state took within the bin.
    """
    width = data.config.run.bin_width
    edges = bin_edges(data.end_time, width)
    bins = len(edges) - 1
    columns: dict[str, np.ndarray] = {"time": edges[:-1]}

    index = np.searchsorted(edges, requests["sent_at"].to_numpy(), side="right") - 1
    endpoint = requests["endpoint"].cat.codes.to_numpy()
    outcome = requests["outcome"].cat.codes.to_numpy()
    total = np.bincount(index, minlength=bins)[:bins]
    columns["requests"] = total.astype(np.int64)
    for e, endpoint_name in enumerate(ENDPOINTS):
        for o, outcome_name in enumerate(REQUEST_OUTCOMES):
            mask = (endpoint == e) & (outcome == o)
            counts = np.bincount(index[mask], minlength=bins)[:bins]
            columns[f"{endpoint_name}_{outcome_name}"] = counts.astype(np.int64)
    rejected = requests["admission"].cat.codes.to_numpy() == ADMISSIONS.index("rejected")
    columns["rejected"] = np.bincount(index[rejected], minlength=bins)[:bins].astype(np.int64)
    columns["request_rate"] = total / width

    # Wasted work: service that ended after the client had stopped waiting, by service end.
    wasted = wasted_mask(requests)
    ended = requests["service_ended_at"].to_numpy()
    wasted_index = np.searchsorted(edges, ended[wasted], side="right") - 1
    service = (ended - requests["service_started_at"].to_numpy())[wasted]
    columns["wasted"] = np.bincount(wasted_index, minlength=bins)[:bins].astype(np.int64)
    # astype: numpy gives integers, not floats, when no request was wasted.
    columns["wasted_service_s"] = np.bincount(wasted_index, weights=service, minlength=bins)[:bins].astype(np.float64)

    recorder = data.recorder
    times = np.frombuffer(recorder.state_time, dtype=np.float64)
    for name, values in (("queue_length", recorder.state_queue), ("busy_workers", recorder.state_busy)):
        state = np.frombuffer(values, dtype=np.int64).astype(np.float64)
        mean, peak = time_weighted(times, state, edges)
        columns[f"{name}_mean"] = mean
        columns[f"{name}_max"] = peak
    return pd.DataFrame(columns)


def time_weighted(times: np.ndarray, values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average and maximum per bin of a step function that takes `values[i]` from `times[i]`.

    The integral up to each edge is read from the running integral at the change points, so
    the cost is O(changes + bins) and exact up to float rounding.
    """
    bins = len(edges) - 1
    if len(times) == 0:
        return np.zeros(bins), np.zeros(bins)

    # Several changes at one instant: only the last value at that time is ever in force.
    last = np.append(times[1:] != times[:-1], True)
    times = times[last]
    values = values[last]

    durations = np.diff(times)
    integral_at = np.concatenate(([0.0], np.cumsum(values[:-1] * durations)))
    position = np.searchsorted(times, edges, side="right") - 1
    before = position < 0
    position = np.clip(position, 0, None)
    integral = integral_at[position] + values[position] * (edges - times[position])
    integral[before] = 0.0
    mean = np.diff(integral) / np.diff(edges)

    # Maximum: the value in force at each bin's start, and every value set inside the bin.
    peak = np.where(before[:-1], 0.0, values[position[:-1]])
    inside = np.searchsorted(edges, times, side="right") - 1
    valid = (inside >= 0) & (inside < bins)
    np.maximum.at(peak, inside[valid], values[valid])
    return mean, peak
