"""Recorded results for fixed seeds stay byte-identical: the guard for performance work.

Each case runs an example config (made smaller) or a config that switches on most of the
server model's features. It hashes every column of the requests, jobs and time-series tables,
byte for byte, with the run's end time and server counters. The tables, not the recorder's
internal columns, are hashed, so the recorder may change how it stores rows.

The hashes in `golden/fingerprints.json` were recorded before the engine was optimised. A
change to the loop, session, server or recorder that moves one event, one draw or one float
bit fails here.

A deliberate change to the model (a new draw, a new column, a fixed bug) changes the hashes.
Then check the change on purpose and record new ones with

    python tests/test_golden.py --update

NOTE: the hashes also depend on numpy's random streams, which numpy keeps stable within a
release series but may change in a new major release.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sim
from sim.engine import simulate
from sim.results import collect

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden" / "fingerprints.json"

# Most features of the server model at once, at a small size.
KITCHEN_SINK = {
    "name": "kitchen-sink",
    "client": {
        "poll": {"initial": 0.5, "multiplier": 1.7, "maximum": 6.0, "jitter": "decorrelated"},
        "retry": {"initial": 0.2, "multiplier": 2.0, "maximum": 4.0, "jitter": "full"},
        "max_attempts": 4,
        "total_timeout": 90.0,
        "request_timeout": 1.5,
    },
    "server": {
        "workers": 3,
        "service_time": {"kind": "exponential", "mean": 0.02},
        "service_time_create": {"kind": "lognormal", "median": 0.03, "sigma": 0.4},
        "queue_limit": 60,
        "queue_timeout": 1.0,
        "reject_status": 429,
        "reject_retry_after": True,
        "rate_limit": {"rate": 150.0, "burst": 40},
        "schedule": [
            {"start": 10.0, "end": 20.0, "kind": "degraded", "workers": 1, "service_factor": 2.0},
            {"start": 30.0, "end": 35.0, "kind": "outage"},
        ],
        "abandoned_work": "drop",
        "latency": {"kind": "uniform", "low": 0.001, "high": 0.004},
        "response_latency": {"kind": "exponential", "mean": 0.003},
        "drop_probability": 0.01,
        "job_duration": {"kind": "empirical", "samples": [3.0, 5.0, 8.0, 21.0]},
        "job_workers": 40,
        "job_error_probability": 0.05,
        "stuck_job_probability": 0.02,
        "pending_retry_after": True,
        "faults": [
            {"endpoint": "create", "status": 503, "probability": 0.05, "retry_after": 1.0},
            {"endpoint": "status", "action": "disconnect", "probability": 0.01},
            {"endpoint": "status", "action": "lost_response", "probability": 0.01},
            {"endpoint": "status", "action": "delay", "delay": 2.0, "probability": 0.01},
            {"endpoint": "status", "action": "bad_body", "body": "html", "probability": 0.005},
        ],
    },
    "workload": {
        "clients": 400,
        "arrival": {"kind": "stages", "stages": [{"duration": 20, "target": 30}, {"duration": 20, "target": 0}]},
        "jobs_per_client": 2,
        "think_time": {"kind": "exponential", "mean": 2.0},
    },
    "run": {"seed": 17, "duration": 150.0, "warmup": 5.0},
}

CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "thundering-herd": (EXAMPLES / "thundering-herd.yaml", {"workload.clients": 800}),
    "outage-no-jitter": (EXAMPLES / "outage-no-jitter.yaml", {"workload.clients": 800}),
    "outage-full-jitter": (EXAMPLES / "outage-full-jitter.yaml", {"workload.clients": 800}),
    "timeout-retry-storm": (EXAMPLES / "timeout-retry-storm.yaml", {"workload.clients": 600}),
    "steady-poisson": (EXAMPLES / "steady-poisson.yaml", {"workload.clients": 600}),
    "original-client": (EXAMPLES / "original-client.yaml", {}),
    "cache-stampede": (EXAMPLES / "cache-stampede.yaml", {"workload.clients": 400}),
    "ramp-up": (EXAMPLES / "ramp-up.yaml", {"workload.clients": 600}),
    "kitchen-sink": (KITCHEN_SINK, {}),
    # No latency, faults or outages: the server's shortest path.
    "plain-server": (EXAMPLES / "thundering-herd.yaml", {"workload.clients": 800, "server.latency": 0}),
    "plain-server-queue-timeout": (EXAMPLES / "timeout-retry-storm.yaml",
                                   {"workload.clients": 600, "server.latency": 0}),
}


def fingerprint(source: Any, overrides: dict[str, Any]) -> str:
    """Run one case and return the SHA-256 of everything its recorder and server counted."""
    search = source.parent if isinstance(source, Path) else None
    result = collect(simulate(sim.load(source, overrides), search=search))
    data = result.data
    digest = hashlib.sha256()
    for table_name, table in (("requests", result.requests), ("jobs", result.jobs),
                              ("timeseries", result.timeseries)):
        for column in table.columns:
            values = table[column]
            digest.update(f"{table_name}.{column}".encode())
            if isinstance(values.dtype, pd.CategoricalDtype):
                digest.update(json.dumps(list(values.cat.categories)).encode())
                values = values.cat.codes
            digest.update(np.ascontiguousarray(values.to_numpy()).tobytes())
    recorder = data.recorder
    server = data.server
    counters = {
        "end_time": repr(data.end_time),
        "started": data.clients_started,
        "outcomes": recorder.outcome_names,
        "resends": recorder.resends,
        **{name: getattr(server, name) for name in ("received", "served", "rejected", "rate_limited",
                                                    "refused", "network_dropped", "abandoned_dropped",
                                                    "faulted", "wasted")},
    }
    digest.update(json.dumps(counters, sort_keys=True).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_results_match_recorded_fingerprint(case: str) -> None:
    recorded = json.loads(GOLDEN.read_text())
    source, overrides = CASES[case]
    assert fingerprint(source, overrides) == recorded[case]


def _update() -> None:
    GOLDEN.parent.mkdir(exist_ok=True)
    values = {case: fingerprint(*CASES[case]) for case in CASES}
    GOLDEN.write_text(json.dumps(values, indent=2) + "\n")
    print(f"wrote {len(values)} fingerprints to {GOLDEN}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_golden.py --update")
    _update()
