"""The modelled server's capacity features, run end to end through `simulate`."""

from __future__ import annotations

from typing import Any

import pytest

from sim.config import config_from_dict
from sim.engine import simulate
from sim.results import RunResult, collect

POLICY = {
    "poll": {"initial": 1.0, "multiplier": 2.0, "maximum": 8.0, "jitter": "full"},
    "retry": {"initial": 0.5, "multiplier": 2.0, "maximum": 8.0, "jitter": "full"},
    "max_attempts": 12,
    "total_timeout": 600.0,
    "request_timeout": 5.0,
}


def run(server: dict[str, Any], workload: dict[str, Any] | None = None, **run_section: Any) -> RunResult:
    config = config_from_dict({
        "name": "model",
        "client": POLICY,
        "server": {"latency": 0.001, "job_duration": 5.0, **server},
        "workload": workload or {"clients": 300, "arrival": {"kind": "uniform", "window": 30.0}},
        "run": {"seed": 4, **run_section},
    })
    return collect(simulate(config))


@pytest.fixture(scope="module")
def outage() -> RunResult:
    return run({"workers": 2, "service_time": 0.01, "queue_limit": 50,
                "schedule": [{"start": 10.0, "end": 25.0, "kind": "outage"}]})


def test_outage_refuses_connections(outage: RunResult) -> None:
    requests = outage.requests
    during = requests[(requests["sent_at"] > 10.1) & (requests["sent_at"] < 24.9)]
    assert len(during) > 0
    assert (during["outcome"] == "connection_error").all()
    assert (during["admission"] == "refused").all()
    assert outage.summary["server"]["refused_while_down"] > 0


def test_outage_serves_after_recovery(outage: RunResult) -> None:
    requests = outage.requests
    after = requests[requests["sent_at"] > 25.1]
    assert (after["outcome"] == "ok").any()
    outcomes = outage.summary["jobs"]["outcomes"]
    # Full jitter can squeeze 12 attempts into the 15 s outage, so a few clients may give up.
    assert outcomes["completed"] + outcomes["gave_up"] == 300
    assert outcomes["completed"] >= 290


def test_outage_window_summary(outage: RunResult) -> None:
    window = outage.summary["capacity_windows"][0]
    assert window["kind"] == "outage"
    assert window["end_s"] == 25.0
    assert window["peak_rate_after_rps"] > 0
    assert window["drain_s"] is not None


def test_degraded_window_slows_service() -> None:
    result = run({"workers": 4, "service_time": 0.01, "queue_limit": 10_000,
                  "schedule": [{"start": 0.0, "end": 1000.0, "kind": "degraded", "workers": 1,
                                "service_factor": 3.0}]})
    served = result.requests.dropna(subset=["service_ended_at"])
    service = served["service_ended_at"] - served["service_started_at"]
    assert service.max() == pytest.approx(0.03)
    assert result.timeseries["busy_workers_max"].max() == 1


def test_abandoned_work_kept_is_wasted() -> None:
    slow = {"workers": 1, "service_time": 0.5, "queue_limit": 10_000}
    result = run(slow, {"clients": 40, "arrival": {"kind": "at_once"}})
    wasted = result.summary["server"]["wasted_work"]
    assert wasted["requests"] > 0
    assert wasted["service_s"] > 0
    assert result.timeseries["wasted"].sum() == wasted["requests"]


def test_abandoned_work_dropped_saves_service() -> None:
    slow = {"workers": 1, "service_time": 0.5, "queue_limit": 10_000}
    kept = run(slow, {"clients": 40, "arrival": {"kind": "at_once"}})
    dropped = run({**slow, "abandoned_work": "drop"}, {"clients": 40, "arrival": {"kind": "at_once"}})
    assert dropped.summary["server"]["abandoned_dropped"] > 0
    assert (dropped.summary["server"]["wasted_work"]["service_s"]
            < kept.summary["server"]["wasted_work"]["service_s"])


def test_rate_limit_answers_429() -> None:
    result = run({"workers": 10, "service_time": 0.001, "rate_limit": {"rate": 5.0, "burst": 5}},
                 {"clients": 200, "arrival": {"kind": "at_once"}})
    limited = result.requests[result.requests["admission"] == "rate_limited"]
    assert len(limited) > 0
    assert (limited["status"] == 429).all()
    admitted = result.requests[result.requests["admission"] == "admitted"]
    # The bucket admits at most burst + rate * elapsed requests.
    elapsed = result.summary["simulated_seconds"]
    assert len(admitted) <= 5 + 5.0 * elapsed + 1


def test_queue_timeout_rejects_late_requests() -> None:
    result = run({"workers": 1, "service_time": 0.2, "queue_limit": 10_000, "queue_timeout": 1.0,
                  "reject_status": 429, "reject_retry_after": True},
                 {"clients": 50, "arrival": {"kind": "at_once"}})
    rejected = result.requests[result.requests["admission"] == "rejected"]
    assert len(rejected) > 0
    assert (rejected["status"] == 429).all()
    waited = result.requests["service_started_at"] - result.requests["arrived_at"]
    assert waited.max() <= 1.0 + 1e-9


def test_job_pool_serializes_jobs() -> None:
    result = run({"workers": 10, "service_time": 0.001, "job_workers": 1, "job_duration": 2.0},
                 {"clients": 5, "arrival": {"kind": "at_once"}})
    ends = sorted(result.jobs["server_finished_at"])
    gaps = [later - earlier for earlier, later in zip(ends, ends[1:])]
    assert gaps == pytest.approx([2.0] * 4)


def test_network_drops_disconnect() -> None:
    result = run({"workers": 10, "service_time": 0.001, "drop_probability": 0.2},
                 {"clients": 100, "arrival": {"kind": "at_once"}})
    dropped = result.summary["server"]["network_dropped"]
    assert dropped > 0
    assert result.summary["server"]["received"] + dropped == len(result.requests)


def test_per_endpoint_service_times() -> None:
    result = run({"workers": 10, "service_time": 0.001, "service_time_create": 0.05,
                  "service_time_status": 0.002}, {"clients": 20, "arrival": {"kind": "at_once"}})
    served = result.requests.dropna(subset=["service_ended_at"])
    service = (served["service_ended_at"] - served["service_started_at"]).groupby(served["endpoint"], observed=True).max()
    assert service["create"] == pytest.approx(0.05)
    assert service["status"] == pytest.approx(0.002)
