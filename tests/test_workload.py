"""Arrival kinds and measured (empirical) distributions: what the config gives is what runs.

The `stages` arrival is checked against the area under its rate curve and against its rate in
each part of a ramp. Empirical distributions are checked against their samples, and their
config errors against the key, rule and line they name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sim.config import ConfigError, Stages, config_from_dict, load_config
from sim.distributions import Empirical, Sampler
from sim.engine import simulate
from sim.results import collect, write_folder
from sim.workload import staged_times

RAMP_HOLD_DOWN = {
    "kind": "stages",
    "stages": [
        {"duration": 60, "target": 50},
        {"duration": 120, "target": 50},
        {"duration": 30, "target": 0},
    ],
}


def stages(spacing: str = "poisson", **changes: object) -> Stages:
    arrival = config_from_dict({"workload": {"arrival": {**RAMP_HOLD_DOWN, **changes}}}).workload.arrival
    return dataclasses.replace(arrival, spacing=spacing)


# ----------------------------------------------------------------------------- stages


def test_stages_expected_clients_is_area_under_rate() -> None:
    # 0 -> 50 over 60 s (1,500), 50 for 120 s (6,000), 50 -> 0 over 30 s (750).
    assert stages().expected_clients == pytest.approx(8250.0)
    assert stages().duration == pytest.approx(210.0)


def test_even_spacing_gives_floor_of_area() -> None:
    times = staged_times(stages("even"), np.random.default_rng(0))
    assert len(times) == 8250
    assert np.all(np.diff(times) >= 0)
    assert times[-1] <= 210.0


def test_even_spacing_hold_is_regular() -> None:
    # During the hold at 50 clients/s, arrivals are 20 ms apart.
    times = staged_times(stages("even"), np.random.default_rng(0))
    hold = times[(times > 70) & (times < 170)]
    assert np.diff(hold) == pytest.approx(np.full(len(hold) - 1, 0.02), abs=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_poisson_count_within_four_sigma(seed: int) -> None:
    # A Poisson count with mean 8,250 has a standard deviation of about 91.
    times = staged_times(stages(), np.random.default_rng(seed))
    assert abs(len(times) - 8250) < 4 * 8250**0.5
    assert np.all(np.diff(times) >= 0)
    assert times[0] >= 0.0
    assert times[-1] <= 210.0


@pytest.mark.parametrize("spacing", ["poisson", "even"])
def test_rate_follows_the_ramp(spacing: str) -> None:
    # Mean rate per 30 s bin: 12.5 and 37.5 on the ramp up, 50 on the hold, 25 on the way down.
    times = staged_times(stages(spacing), np.random.default_rng(7))
    counts, _ = np.histogram(times, bins=np.arange(0.0, 211.0, 30.0))
    expected = np.array([12.5, 37.5, 50, 50, 50, 50, 25]) * 30
    assert counts == pytest.approx(expected, rel=0.12 if spacing == "poisson" else 0.01)


def test_start_rate_holds_without_ramp() -> None:
    arrival = stages("even", start_rate=10.0, stages=[{"duration": 100, "target": 10}])
    times = staged_times(arrival, np.random.default_rng(0))
    assert len(times) == 1000
    assert np.diff(times) == pytest.approx(np.full(999, 0.1))


def test_stages_same_seed_same_times() -> None:
    first = staged_times(stages(), np.random.default_rng(11))
    second = staged_times(stages(), np.random.default_rng(11))
    assert np.array_equal(first, second)


def test_clients_ceiling_drops_and_counts_arrivals(caplog: pytest.LogCaptureFixture) -> None:
    config = config_from_dict({
        "client": {"request_timeout": 5.0},
        "server": {"latency": 0, "job_duration": 0.5},
        "workload": {
            "clients": 100,
            "client": "single_request",
            "arrival": {"kind": "stages", "spacing": "even", "stages": [{"duration": 20, "target": 20}]},
        },
    })
    with caplog.at_level("WARNING", logger="sim.engine"):
        summary = collect(simulate(config)).summary
    # The ramp 0 -> 20/s over 20 s brings 200 arrivals; the ceiling lets 100 start.
    assert summary["clients"]["started"] == 100
    assert summary["clients"]["arrivals_dropped"] == 100
    assert "workload.clients is 100" in caplog.text


def test_stages_under_ceiling_start_every_arrival() -> None:
    config = config_from_dict({
        "server": {"latency": 0},
        "workload": {
            "clients": 1000,
            "client": "single_request",
            "arrival": {"kind": "stages", "spacing": "even", "stages": [{"duration": 10, "target": 10}]},
        },
    })
    summary = collect(simulate(config)).summary
    assert summary["clients"]["started"] == 50
    assert summary["clients"]["arrivals_dropped"] == 0


@pytest.mark.parametrize(
    ("arrival", "message"),
    [
        ({"kind": "stages"}, "workload.arrival.stages: must be a non-empty list"),
        ({"kind": "stages", "stages": [{"duration": 10, "target": 0}]},
         "workload.arrival.stages: must be a schedule whose start_rate or some target is above 0"),
        ({"kind": "stages", "stages": [{"duration": 0, "target": 5}]},
         "workload.arrival.stages[0].duration: must be a finite number > 0; got 0"),
        ({"kind": "stages", "stages": [{"duration": 5, "target": -1}]},
         "workload.arrival.stages[0].target: must be a finite number >= 0; got -1"),
        ({"kind": "stages", "stages": [{"duration": 5}]},
         "workload.arrival.stages[0].target: missing"),
        ({"kind": "stages", "stages": [{"duration": 5, "target": 1}], "spacing": "regular"},
         "workload.arrival.spacing: must be one of poisson, even; got 'regular'"),
        ({"kind": "stages", "stages": [{"duration": 5, "traget": 1}]},
         "did you mean 'target'?"),
    ],
)
def test_bad_stages_rejected(arrival: dict, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_dict({"workload": {"arrival": arrival}})
    assert message in str(raised.value)


# ----------------------------------------------------------------------------- empirical


def service_time(tmp_path: Path, spec: dict) -> object:
    return config_from_dict({"server": {"service_time": spec}}, base_dir=tmp_path).server.service_time


def test_inline_samples_in_seconds(tmp_path: Path) -> None:
    distribution = service_time(tmp_path, {"kind": "empirical", "samples": [0.1, 0.3]})
    assert distribution == Empirical(samples=(0.1, 0.3))
    assert distribution.mean == pytest.approx(0.2)


def test_inline_samples_in_milliseconds(tmp_path: Path) -> None:
    distribution = service_time(tmp_path, {"kind": "empirical", "samples": [5, 15], "unit": "ms"})
    assert distribution.samples == pytest.approx((0.005, 0.015))


def test_text_file_one_value_per_line(tmp_path: Path) -> None:
    (tmp_path / "values.txt").write_text("# measured on 2026-11-30\n0.010\n\n0.020\n0.060\n")
    distribution = service_time(tmp_path, {"kind": "empirical", "file": "values.txt"})
    assert distribution.samples == (0.01, 0.02, 0.06)


def test_csv_column_with_unit(tmp_path: Path) -> None:
    (tmp_path / "trace.csv").write_text("endpoint,duration_ms\ncreate,12\nstatus,3\nstatus,4\n")
    distribution = service_time(
        tmp_path, {"kind": "empirical", "file": "trace.csv", "column": "duration_ms", "unit": "ms"}
    )
    assert distribution.samples == pytest.approx((0.012, 0.003, 0.004))


def test_load_config_reads_file_beside_config(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "durations.txt").write_text("30\n60\n")
    (folder / "run.yaml").write_text("server:\n  job_duration: {kind: empirical, file: durations.txt}\n")
    assert load_config(folder / "run.yaml").server.job_duration.samples == (30.0, 60.0)


def test_draws_are_the_samples_in_proportion() -> None:
    distribution = Empirical(samples=(1.0, 1.0, 1.0, 5.0))
    sampler = Sampler(distribution, np.random.default_rng(3))
    draws = np.array([sampler() for _ in range(40_000)])
    assert set(np.unique(draws)) == {1.0, 5.0}
    # P(5.0) = 1/4; the standard error over 40,000 draws is about 0.002.
    assert np.mean(draws == 5.0) == pytest.approx(0.25, abs=0.01)


def test_saved_config_carries_samples(tmp_path: Path) -> None:
    (tmp_path / "values.txt").write_text("0.5\n1.5\n")
    config = config_from_dict({"server": {"job_duration": {"kind": "empirical", "file": "values.txt"}}},
                              base_dir=tmp_path)
    (tmp_path / "values.txt").unlink()
    result = collect(simulate(dataclasses.replace(
        config, workload=dataclasses.replace(config.workload, clients=3))))
    folder = write_folder(result, tmp_path / "run")
    assert load_config(folder / "config.yaml").server.job_duration.samples == (0.5, 1.5)


@pytest.mark.parametrize(
    ("content", "spec", "message"),
    [
        ("0.1\n-2\n", {}, "server.service_time.file: '{path}': each value must be a finite number >= 0; got line 2: '-2'"),
        ("0.1\nfast\n", {}, "each value must be a finite number >= 0; got line 2: 'fast'"),
        ("0.1\nnan\n", {}, "each value must be a finite number >= 0; got line 2: 'nan'"),
        ("1\nx\n-1\n2\ny\n", {}, "got line 2: 'x'; line 3: '-1'; line 5: 'y'"),
        ("0\n" + "".join(f"bad{i}\n" for i in range(8)), {}, "line 6: 'bad4'; and 3 more"),
        ("a,b\n1,2\n", {}, "server.service_time.column: '{path}' has 2 columns; name one with `column`; columns are a, b"),
        ("a,b\n1,2\n", {"column": "c"}, "server.service_time.column: '{path}' has no column 'c'; columns are a, b"),
        ("1\n2\n", {"column": "a"}, "has no header line to find column 'a' in"),
        ("# nothing\n\n", {}, "is empty: no values found; give one number per line"),
        ("seconds\n", {}, "has a header but no values"),
        ("1\n", {"unit": "min"}, "server.service_time.unit: must be one of s, ms, us; got 'min'"),
    ],
)
def test_bad_sample_file_names_key_rule_and_line(tmp_path: Path, content: str, spec: dict, message: str) -> None:
    path = tmp_path / "samples.csv"
    path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        service_time(tmp_path, {"kind": "empirical", "file": "samples.csv", **spec})
    assert message.format(path=path) in str(raised.value)


def test_missing_sample_file_says_where_paths_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        service_time(tmp_path, {"kind": "empirical", "file": "absent.csv"})
    assert "server.service_time.file: no such file" in str(raised.value)
    assert "a relative path is read from the config file's folder" in str(raised.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "give exactly one of samples (a list of numbers) or file (a path); got neither"),
        ({"samples": [1], "file": "x"}, "got both"),
        ({"samples": []}, "server.service_time.samples: must be a non-empty list of seconds; got an empty list"),
        ({"samples": [0.1, -1]}, "server.service_time.samples[1]: must be a finite number >= 0; got -1"),
        ({"samples": [0.1, "x"]}, "server.service_time.samples[1]: expected a number; got 'x'"),
        ({"samples": 0.1}, "server.service_time.samples: expected a list of numbers; got 0.1"),
        ({"samples": [1], "column": "a"}, "server.service_time.column: only applies with file"),
        ({"sample": [1]}, "did you mean 'samples'?"),
    ],
)
def test_bad_inline_samples_rejected(tmp_path: Path, spec: dict, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        service_time(tmp_path, {"kind": "empirical", **spec})
    assert message in str(raised.value)
