"""The server model against queueing theory: M/M/1, M/M/c (Erlang C), M/G/1 and Little's law.

Each case drives the modelled server with a Poisson stream of single requests (the built-in
`single_request` client) and exponential service, with no network latency and an unbounded
queue, then compares the time-weighted figures of the summary, averaged over several seeds,
with the closed forms. Tolerances are relative and stated per check; single runs at these sizes
vary by a few percent, which is why several seeds are averaged.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import mean

import pytest

from sim.config import config_from_dict
from sim.engine import simulate
from sim.results import collect

SEEDS = (1, 2, 3, 4, 5)


def erlang_c(servers: int, offered_load: float) -> float:
    """Return the probability that an arrival waits in an M/M/c queue (Erlang's C formula)."""
    top = offered_load**servers / math.factorial(servers) * servers / (servers - offered_load)
    bottom = sum(offered_load**k / math.factorial(k) for k in range(servers)) + top
    return top / bottom


def run_queue(servers: int, arrival_rate: float, service_rate: float, seed: int, clients: int,
              service_time: dict | None = None, base_dir: Path | None = None) -> dict:
    """Run one queue and return its summary's queueing figures; `service_time` overrides the
    exponential service of rate `service_rate`."""
    if service_time is None:
        service_time = {"kind": "exponential", "mean": 1.0 / service_rate}
    config = config_from_dict({
        "name": "queueing",
        "client": {"request_timeout": 1e9, "total_timeout": 1e9},
        "server": {
            "workers": servers,
            "service_time": service_time,
            "queue_limit": 10_000_000,
            "latency": 0,
        },
        "workload": {
            "clients": clients,
            "arrival": {"kind": "poisson", "rate": arrival_rate},
            "client": "single_request",
        },
        # About 10% of the run is discarded as warm-up.
        "run": {"seed": seed, "warmup": 0.1 * clients / arrival_rate},
    }, base_dir=base_dir)
    return collect(simulate(config)).summary["queueing"]


@pytest.fixture(scope="module")
def mm1_runs() -> list[dict]:
    return [run_queue(1, 8.0, 10.0, seed, 20_000) for seed in SEEDS]


@pytest.fixture(scope="module")
def mm4_runs() -> list[dict]:
    return [run_queue(4, 3.0, 1.0, seed, 15_000) for seed in SEEDS]


@pytest.fixture(scope="module")
def mm5_runs() -> list[dict]:
    return [run_queue(5, 2.5, 1.0, seed, 10_000) for seed in SEEDS]


# Measured service times for M/G/1: three fast requests for every slow one, in milliseconds,
# so E[S] = 0.1 s and E[S^2] = 0.0175 s^2, a coefficient of variation of 0.87.
MG1_SAMPLES_MS = "duration_ms,endpoint\n50,a\n50,a\n50,a\n250,b\n"


@pytest.fixture(scope="module")
def mg1_runs(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    folder = tmp_path_factory.mktemp("mg1")
    (folder / "service.csv").write_text(MG1_SAMPLES_MS)
    service = {"kind": "empirical", "file": "service.csv", "column": "duration_ms", "unit": "ms"}
    return [run_queue(1, 6.0, 0.0, seed, 20_000, service, folder) for seed in SEEDS[:3]]


def test_erlang_c_worked_values() -> None:
    assert erlang_c(4, 3.0) == pytest.approx(0.5094, abs=1e-4)
    assert erlang_c(5, 2.5) == pytest.approx(0.1304, abs=1e-4)


def test_mm1_time_in_system(mm1_runs: list[dict]) -> None:
    # lambda = 8/s, mu = 10/s: W = 1/(mu - lambda) = 0.5 s. Within 6%.
    measured = mean(run["time_in_system_mean_s"] for run in mm1_runs)
    assert measured == pytest.approx(0.5, rel=0.06)


def test_mm1_wait_in_queue(mm1_runs: list[dict]) -> None:
    # Wq = rho / (mu - lambda) = 0.4 s. Within 7%.
    measured = mean(run["wait_in_queue_mean_s"] for run in mm1_runs)
    assert measured == pytest.approx(0.4, rel=0.07)


def test_mm1_number_in_system(mm1_runs: list[dict]) -> None:
    # L = rho / (1 - rho) = 4. Within 7%.
    measured = mean(run["in_system_mean"] for run in mm1_runs)
    assert measured == pytest.approx(4.0, rel=0.07)


def test_mm1_utilization(mm1_runs: list[dict]) -> None:
    measured = mean(run["utilization"] for run in mm1_runs)
    assert measured == pytest.approx(0.8, rel=0.02)


def test_mm4_probability_of_wait(mm4_runs: list[dict]) -> None:
    # c = 4, lambda = 3/s, mu = 1/s: C(4, 3) = 0.5094. Within 5%.
    measured = mean(run["probability_of_wait"] for run in mm4_runs)
    assert measured == pytest.approx(erlang_c(4, 3.0), rel=0.05)


def test_mm4_mean_wait(mm4_runs: list[dict]) -> None:
    # Wq = C / (c * mu - lambda) = 0.5094 s. Within 8%.
    measured = mean(run["wait_in_queue_mean_s"] for run in mm4_runs)
    assert measured == pytest.approx(erlang_c(4, 3.0) / (4 * 1.0 - 3.0), rel=0.08)


def test_mm5_probability_of_wait(mm5_runs: list[dict]) -> None:
    # c = 5, lambda = 2.5/s, mu = 1/s: C(5, 2.5) = 0.1304. Within 8%.
    measured = mean(run["probability_of_wait"] for run in mm5_runs)
    assert measured == pytest.approx(erlang_c(5, 2.5), rel=0.08)


def test_mg1_empirical_wait_matches_pollaczek_khinchine(mg1_runs: list[dict]) -> None:
    # lambda = 6/s, rho = 0.6: Wq = lambda * E[S^2] / (2 * (1 - rho)) = 0.13125 s. Within 8%:
    # service this variable converges more slowly than exponential service.
    measured = mean(run["wait_in_queue_mean_s"] for run in mg1_runs)
    assert measured == pytest.approx(6.0 * 0.0175 / (2 * (1 - 0.6)), rel=0.08)


def test_mg1_empirical_utilization(mg1_runs: list[dict]) -> None:
    measured = mean(run["utilization"] for run in mg1_runs)
    assert measured == pytest.approx(0.6, rel=0.03)


@pytest.mark.parametrize("case", ["mm1_runs", "mm4_runs", "mm5_runs", "mg1_runs"])
def test_littles_law_every_run(case: str, request: pytest.FixtureRequest) -> None:
    # L = lambda * W holds for every stable run, not only on average. Within 2%.
    for run in request.getfixturevalue(case):
        assert run["littles_law_ratio"] == pytest.approx(1.0, rel=0.02)
