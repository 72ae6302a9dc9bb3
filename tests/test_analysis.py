"""`sim.analysis`: seed means, Pareto fronts, peaks, drain times and policy source code."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from client import Backoff, ClientPolicy
from sim import analysis

SMALL_HERD = {
    "name": "small-herd",
    "client": {"poll": {"initial": 1.0, "multiplier": 2.0, "maximum": 8.0, "jitter": "none"},
               "retry": {"initial": 1.0, "multiplier": 2.0, "maximum": 8.0, "jitter": "none"},
               "total_timeout": 120.0},
    "server": {"workers": 2, "service_time": 0.01, "queue_limit": 20,
               "job_duration": {"kind": "uniform", "low": 5.0, "high": 15.0}},
    "workload": {"clients": 200},
    "run": {"seed": 3},
}


def series(rate: list[float], rejected: list[int] | None = None, queue: list[float] | None = None,
           width: float = 1.0) -> pd.DataFrame:
    """A time series with the columns the analysis functions read."""
    count = len(rate)
    return pd.DataFrame({
        "time": np.arange(count) * width,
        "request_rate": np.asarray(rate, dtype=float),
        "rejected": np.asarray(rejected if rejected is not None else [0] * count),
        "queue_length_mean": np.asarray(queue if queue is not None else [0.0] * count, dtype=float),
    })


# ----------------------------------------------------------------------------- pareto_front


def test_pareto_front_marks_undominated() -> None:
    table = pd.DataFrame({"cost": [1, 2, 3, 2, 4], "delay": [5, 3, 1, 4, 4]})
    front = analysis.pareto_front(table, ["cost", "delay"])
    assert front.tolist() == [True, True, True, False, False]


def test_pareto_front_equal_on_one_better_on_other() -> None:
    # (2, 3) beats (2, 4): equal cost, lower delay.
    table = pd.DataFrame({"cost": [2, 2], "delay": [3, 4]})
    assert analysis.pareto_front(table, ["cost", "delay"]).tolist() == [True, False]


def test_pareto_front_keeps_identical_rows() -> None:
    table = pd.DataFrame({"cost": [1, 1, 2], "delay": [2, 2, 3]})
    assert analysis.pareto_front(table, ["cost", "delay"]).tolist() == [True, True, False]


def test_pareto_front_missing_values_excluded() -> None:
    table = pd.DataFrame({"cost": [1.0, np.nan, 3.0], "delay": [5.0, 0.0, 4.0]})
    front = analysis.pareto_front(table, ["cost", "delay"])
    assert front.tolist() == [True, False, True]


def test_pareto_front_none_values_excluded() -> None:
    table = pd.DataFrame({"cost": [1, 2], "delay": [None, 4]}, dtype=object)
    assert analysis.pareto_front(table, ["cost", "delay"]).tolist() == [False, True]


def test_pareto_front_single_objective_minimum() -> None:
    table = pd.DataFrame({"cost": [3, 1, 2, 1]})
    assert analysis.pareto_front(table, ["cost"]).tolist() == [False, True, False, True]


def test_pareto_front_aligned_with_index() -> None:
    table = pd.DataFrame({"cost": [2, 1], "delay": [2, 1]}, index=["b", "a"])
    front = analysis.pareto_front(table, ["cost", "delay"])
    assert front.index.tolist() == ["b", "a"]
    assert front["a"]
    assert not front["b"]


def test_pareto_front_needs_objectives() -> None:
    with pytest.raises(ValueError, match="objectives"):
        analysis.pareto_front(pd.DataFrame({"cost": [1]}), [])


# ----------------------------------------------------------------------------- mean_over_seeds


def sweep_like() -> pd.DataFrame:
    return pd.DataFrame({
        "client.poll.jitter": ["full", "full", "none", "none"],
        "seed": [11, 12, 11, 12],
        "replication": [0, 1, 0, 1],
        "requests": [10, 20, 30, 50],
        "completion_p99_s": [1.0, None, None, None],
        "folder": ["runs/a", "runs/b", "runs/c", "runs/d"],
    })


def test_mean_over_seeds_groups_in_order() -> None:
    means = analysis.mean_over_seeds(sweep_like(), ["client.poll.jitter"])
    assert means["client.poll.jitter"].tolist() == ["full", "none"]
    assert means["requests"].tolist() == [15.0, 40.0]
    assert means["runs"].tolist() == [2, 2]


def test_mean_over_seeds_skips_missing_values() -> None:
    means = analysis.mean_over_seeds(sweep_like(), ["client.poll.jitter"], ["completion_p99_s"])
    assert means["completion_p99_s"].iloc[0] == 1.0
    assert math.isnan(means["completion_p99_s"].iloc[1])


def test_mean_over_seeds_default_metrics() -> None:
    means = analysis.mean_over_seeds(sweep_like(), ["client.poll.jitter"])
    assert "seed" not in means.columns
    assert "replication" not in means.columns
    assert "folder" not in means.columns
    assert "requests" in means.columns


def test_mean_over_seeds_unknown_parameter() -> None:
    with pytest.raises(KeyError, match="client.poll.maximum"):
        analysis.mean_over_seeds(sweep_like(), ["client.poll.maximum"])


# ----------------------------------------------------------------------------- peak_rate


def test_peak_rate_whole_series() -> None:
    peak = analysis.peak_rate(series([5, 9, 2, 7]))
    assert peak == analysis.Peak(9.0, 1.0)


def test_peak_rate_after_start() -> None:
    peak = analysis.peak_rate(series([50, 9, 2, 7]), start=1.0)
    assert peak.rate_rps == 9.0
    assert peak.at_s == 1.0


def test_peak_rate_before_end() -> None:
    assert analysis.peak_rate(series([5, 9, 2, 70]), end=3.0).rate_rps == 9.0


def test_peak_rate_empty_range() -> None:
    peak = analysis.peak_rate(series([5, 9]), start=10.0)
    assert peak.rate_rps == 0.0
    assert math.isnan(peak.at_s)


# ----------------------------------------------------------------------------- time_to_drain


def test_drain_no_overload_is_zero() -> None:
    assert analysis.time_to_drain(series([1, 1, 1])) == 0.0


def test_drain_ends_after_last_wave() -> None:
    # Rejections in bins 0 and 1, calm in 2, a second wave in 4, calm after.
    timeseries = series([9] * 7, rejected=[5, 3, 0, 0, 2, 0, 0])
    assert analysis.time_to_drain(timeseries) == 5.0


def test_drain_counts_standing_queue() -> None:
    timeseries = series([9] * 5, queue=[0.0, 3.0, 0.5, 0.0, 0.0])
    assert analysis.time_to_drain(timeseries) == 2.0
    assert analysis.time_to_drain(timeseries, queue_threshold=0.4) == 3.0


def test_drain_from_start() -> None:
    timeseries = series([9] * 8, rejected=[0, 0, 4, 4, 4, 0, 0, 0], width=0.5)
    assert analysis.time_to_drain(timeseries, start=1.0) == 1.5


def test_drain_ignores_bins_before_start() -> None:
    timeseries = series([9] * 6, rejected=[4, 4, 0, 0, 0, 0])
    assert analysis.time_to_drain(timeseries, start=3.0) == 0.0


def test_drain_still_overloaded_is_nan() -> None:
    assert math.isnan(analysis.time_to_drain(series([9] * 3, rejected=[0, 1, 1])))


def test_drain_one_bin_needs_width() -> None:
    with pytest.raises(ValueError, match="bin_width"):
        analysis.time_to_drain(series([1]))
    assert analysis.time_to_drain(series([1]), bin_width=1.0) == 0.0


def test_drain_of_real_run_matches_series() -> None:
    result = sim.run(SMALL_HERD)
    timeseries = result.timeseries
    drain = analysis.time_to_drain(timeseries)
    assert 0 < drain < result.summary["simulated_seconds"]
    after = timeseries[timeseries["time"] >= drain]
    assert (after["rejected"] == 0).all()
    assert (after["queue_length_mean"] < 1.0).all()


# ----------------------------------------------------------------------------- labels and overrides


def test_describe_points_names_and_units() -> None:
    table = pd.DataFrame({"client.poll.jitter": ["full"], "client.poll.maximum": [10.0]})
    labels = analysis.describe_points(table, ["client.poll.jitter", "client.poll.maximum"],
                                      names={"client.poll.maximum": "cap"}, units={"client.poll.maximum": "s"})
    assert labels.tolist() == ["jitter=full, cap=10 s"]


def test_point_overrides_plain_python_values() -> None:
    row = pd.DataFrame({"client.poll.maximum": [10], "client.poll.jitter": ["full"]}).iloc[0]
    overrides = analysis.point_overrides(row, ["client.poll.maximum", "client.poll.jitter"])
    assert overrides == {"client.poll.maximum": 10, "client.poll.jitter": "full"}
    assert type(overrides["client.poll.maximum"]) is int
    assert sim.load(SMALL_HERD, overrides).client.poll.maximum == 10.0


# ----------------------------------------------------------------------------- run_table


def test_run_table_reads_run_folder(tmp_path: Path) -> None:
    table = sim.sweep(SMALL_HERD, {"client.poll.jitter": ["none", "full"]}, seeds=1, out=tmp_path / "sweep",
                      processes=1, progress=False)
    timeseries = analysis.run_table(table, 1, "timeseries")
    jobs = analysis.run_table(table, 1, "jobs")
    assert timeseries["request_rate"].max() == table.loc[1, "peak_rate_rps"]
    assert len(jobs) == table.loc[1, "jobs"]


def test_run_table_needs_folder(tmp_path: Path) -> None:
    table = pd.DataFrame({"folder": ["runs/000"]})
    with pytest.raises(ValueError, match="folder="):
        analysis.run_table(table, 0)
    with pytest.raises(FileNotFoundError, match="timeseries.parquet"):
        analysis.run_table(table, 0, folder=tmp_path)


# ----------------------------------------------------------------------------- policy_source


def build(source: str) -> ClientPolicy:
    return eval(source, {"ClientPolicy": ClientPolicy, "Backoff": Backoff})  # noqa: S307


@pytest.mark.parametrize("policy", [
    ClientPolicy(),
    ClientPolicy(poll=Backoff(initial=2.0, multiplier=1.5, maximum=10.0, jitter="full"),
                 retry=Backoff(initial=0.5, maximum=20.0, jitter="decorrelated"),
                 max_attempts=4, total_timeout=90.0, request_timeout=5.0, max_retry_after=30.0),
    ClientPolicy(poll=Backoff(jitter="proportional", jitter_fraction=0.3)),
    ClientPolicy(poll=Backoff(jitter="none", jitter_fraction=0.5)),
], ids=["default", "every-field", "proportional", "unused-fraction"])
def test_policy_source_builds_same_policy(policy: ClientPolicy) -> None:
    assert build(analysis.policy_source(policy)) == policy


def test_policy_source_lists_every_field() -> None:
    source = analysis.policy_source(ClientPolicy())
    for name in ("poll=", "retry=", "max_attempts=", "total_timeout=", "request_timeout=", "max_retry_after="):
        assert name in source
    assert "jitter='equal'" in source
    assert "jitter_fraction" not in source


def test_policy_source_proportional_has_fraction() -> None:
    source = analysis.policy_source(ClientPolicy(poll=Backoff(jitter="proportional")))
    assert "jitter='proportional', jitter_fraction=0.2" in source
