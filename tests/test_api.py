"""The Python API: `sim.run`, `sim.load`, `sim.override` and `sim.sweep`.

Sweeps run real simulations in real worker processes. They are kept small (a few hundred
clients) so that the whole file runs in well under a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim.config import ConfigError, config_to_dict
from sim.sweeps import grid_points, sweep_seeds

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SMALL = {
    "name": "small-herd",
    "client": {"poll": {"initial": 1.0, "multiplier": 2.0, "maximum": 8.0, "jitter": "full"},
               "total_timeout": 120.0},
    "server": {"workers": 4, "service_time": 0.01, "queue_limit": 50,
               "job_duration": {"kind": "uniform", "low": 5.0, "high": 15.0}},
    "workload": {"clients": 150},
    "run": {"seed": 21},
}

GRID = {"client.poll.jitter": ["none", "full", "equal"], "client.poll.maximum": [4.0, 16.0]}


# ----------------------------------------------------------------------------- run and load


def test_run_from_dict_returns_tables() -> None:
    result = sim.run(SMALL)
    assert isinstance(result.requests, pd.DataFrame)
    assert len(result.jobs) == 150
    assert result.summary["requests"]["total"] == len(result.requests)
    assert result.timeseries["time"].is_monotonic_increasing


def test_run_from_path_names_config_by_file() -> None:
    result = sim.run(EXAMPLES / "thundering-herd.yaml", {"workload.clients": 40})
    assert result.config.name == "thundering-herd"
    assert result.summary["clients"]["started"] == 40


def test_run_from_config_equals_run_from_dict() -> None:
    first = sim.run(SMALL)
    second = sim.run(sim.load(SMALL))
    assert first.summary == second.summary


def test_overrides_and_seed_applied() -> None:
    result = sim.run(SMALL, {"client.poll.jitter": "none", "workload.clients": 30}, seed=5)
    assert result.config.client.poll.jitter.value == "none"
    assert result.config.run.seed == 5
    assert len(result.jobs) == 30


def test_seed_changes_results() -> None:
    assert sim.run(SMALL, seed=1).summary != sim.run(SMALL, seed=2).summary


def test_out_writes_results_folder(tmp_path: Path) -> None:
    result = sim.run(SMALL, out=tmp_path / "run")
    assert result.folder == tmp_path / "run"
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == result.summary
    assert (tmp_path / "run" / "requests_per_second.png").exists()


def test_out_existing_folder_rejected(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(FileExistsError, match="out: .* already exists"):
        sim.run(SMALL, out=tmp_path / "run")


def test_override_keeps_other_fields() -> None:
    base = sim.load(SMALL)
    changed = sim.override(base, {"client.poll.maximum": 12.0})
    assert changed.client.poll.maximum == 12.0
    assert changed.client.poll.initial == base.client.poll.initial
    assert config_to_dict(changed.server) == config_to_dict(base.server)


def test_override_unknown_key_suggests() -> None:
    with pytest.raises(ConfigError, match=r"client\.pol: unknown key in client \(did you mean 'poll'\?\)"):
        sim.override(sim.load(SMALL), {"client.pol.jitter": "none"})


def test_override_bad_value_names_path() -> None:
    with pytest.raises(ConfigError, match=r"workload\.clients: must be an integer >= 1 and <= 10000000; got 0"):
        sim.override(sim.load(SMALL), {"workload.clients": 0})


def test_override_into_single_value_rejected() -> None:
    with pytest.raises(ConfigError, match=r"client\.poll\.initial is a single value"):
        sim.override(sim.load(SMALL), {"client.poll.initial.low": 1})


def test_override_sets_optional_section() -> None:
    changed = sim.override(sim.load(SMALL), {"server.rate_limit": {"rate": 50.0, "burst": 10}})
    assert changed.server.rate_limit.rate == 50.0


def test_load_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="config: expected a Config"):
        sim.load(42)


# ----------------------------------------------------------------------------- sweep helpers


def test_grid_points_product_last_key_fastest() -> None:
    points = grid_points({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(points) == 6
    assert points[0] == {"a": 1, "b": "x"}
    assert points[1] == {"a": 1, "b": "y"}
    assert points[3] == {"a": 2, "b": "x"}


def test_grid_points_explicit_list_kept() -> None:
    points = [{"a": 1}, {"a": 5, "b": 2}]
    assert grid_points(points) == points


def test_grid_value_must_be_list() -> None:
    with pytest.raises(ConfigError, match="a: invalid grid entry"):
        grid_points({"a": "none"})


def test_sweep_seeds_derived_and_distinct() -> None:
    seeds = sweep_seeds(7, 4)
    assert seeds == sweep_seeds(7, 4)
    assert len(set(seeds)) == 4
    assert seeds != sweep_seeds(8, 4)


# ----------------------------------------------------------------------------- sweep


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    root = tmp_path_factory.mktemp("sweeps")
    return {
        "parallel": sim.sweep(SMALL, GRID, seeds=3, out=root / "parallel", processes=2, progress=False),
        "again": sim.sweep(SMALL, GRID, seeds=3, out=root / "again", processes=2, progress=False),
        "serial": sim.sweep(SMALL, GRID, seeds=3, out=root / "serial", processes=1, progress=False),
    }


def test_sweep_has_row_per_run(sweeps: dict[str, pd.DataFrame]) -> None:
    table = sweeps["parallel"]
    assert len(table) == 3 * 2 * 3
    assert list(table.columns[:4]) == ["client.poll.jitter", "client.poll.maximum", "seed", "replication"]
    assert set(sim.HEADLINE) <= set(table.columns)


def test_sweep_twice_gives_same_table(sweeps: dict[str, pd.DataFrame]) -> None:
    pd.testing.assert_frame_equal(sweeps["parallel"], sweeps["again"])


def test_sweep_parallel_equals_serial(sweeps: dict[str, pd.DataFrame]) -> None:
    pd.testing.assert_frame_equal(sweeps["parallel"], sweeps["serial"])


def test_sweep_common_seeds_across_points(sweeps: dict[str, pd.DataFrame]) -> None:
    table = sweeps["parallel"]
    per_replication = table.groupby("replication")["seed"].nunique()
    assert (per_replication == 1).all()
    assert table["seed"].nunique() == 3
    assert sorted(table["seed"].unique()) == sorted(sweep_seeds(SMALL["run"]["seed"], 3))


def test_sweep_row_matches_single_run(sweeps: dict[str, pd.DataFrame]) -> None:
    row = sweeps["parallel"].iloc[4]
    result = sim.run(SMALL, {"client.poll.jitter": row["client.poll.jitter"],
                             "client.poll.maximum": row["client.poll.maximum"]}, seed=int(row["seed"]))
    assert row["requests"] == result.summary["requests"]["total"]
    assert row["completion_p99_s"] == result.summary["completion_latency_s"]["p99"]


def test_sweep_settings_change_results(sweeps: dict[str, pd.DataFrame]) -> None:
    # A longer cap on the poll interval means a job's end is seen later.
    table = sweeps["parallel"]
    delay = table.groupby("client.poll.maximum")["detection_delay_p99_s"].mean()
    assert delay[16.0] > delay[4.0]
    assert table.groupby("client.poll.jitter")["requests"].mean().nunique() == 3


def test_sweep_writes_run_folders_and_table(sweeps: dict[str, pd.DataFrame]) -> None:
    table = sweeps["parallel"]
    folder = Path(table.attrs["folder"])
    for relative in table["folder"]:
        assert (folder / relative / "summary.json").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "sweep.parquet"), table)
    description = json.loads((folder / "sweep.json").read_text())
    assert description["seeds"] == sorted(table["seed"].unique(), key=list(table["seed"]).index)
    assert len(description["grid"]) == 6


def test_sweep_run_folder_matches_row(sweeps: dict[str, pd.DataFrame]) -> None:
    table = sweeps["parallel"]
    row = table.iloc[7]
    summary = json.loads((Path(table.attrs["folder"]) / row["folder"] / "summary.json").read_text())
    assert summary["seed"] == row["seed"]
    assert summary["requests"]["total"] == row["requests"]


def test_sweep_bad_grid_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"client\.poll\.jitter: must be one of"):
        sim.sweep(SMALL, {"client.poll.jitter": ["full", "sideways"]}, seeds=1,
                  out=tmp_path / "bad", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_sweep_failing_run_leaves_no_folder(tmp_path: Path) -> None:
    (tmp_path / "broken_client.py").write_text(
        "async def run(context):\n    raise RuntimeError('scenario bug')\n"
    )
    with pytest.raises(RuntimeError, match="scenario bug"):
        sim.sweep(SMALL, {"workload.client": ["broken_client:run"]}, seeds=1, out=tmp_path / "out",
                  processes=1, progress=False, search=tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != "__pycache__") == ["broken_client.py"]


def test_sweep_existing_folder_rejected(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        sim.sweep(SMALL, GRID, seeds=1, out=tmp_path / "out", progress=False)


def test_sweep_explicit_seeds_used(tmp_path: Path) -> None:
    table = sim.sweep(SMALL, [{"client.poll.maximum": 4.0}], seeds=[11, 12], out=tmp_path / "s",
                      processes=1, progress=False)
    assert list(table["seed"]) == [11, 12]


def test_override_accepts_numpy_scalars() -> None:
    # Values taken from a sweep table or a numpy grid arrive as numpy scalars.
    import numpy as np

    changed = sim.override(sim.load(SMALL), {"client.poll.maximum": np.float64(12.5),
                                             "workload.clients": np.int64(20),
                                             "client.poll.jitter": np.str_("none")})
    assert changed.client.poll.maximum == 12.5
    assert changed.workload.clients == 20
    assert type(changed.workload.clients) is int


def test_sweep_default_folders_in_one_second_differ(tmp_path: Path) -> None:
    grid = [{"client.poll.maximum": 4.0}]
    first = sim.sweep(SMALL, grid, seeds=1, processes=1, progress=False, results_root=tmp_path)
    second = sim.sweep(SMALL, grid, seeds=1, processes=1, progress=False, results_root=tmp_path)
    assert first.attrs["folder"] != second.attrs["folder"]
    pd.testing.assert_frame_equal(first, second)


def test_sweep_grid_mixing_number_and_distribution(tmp_path: Path) -> None:
    table = sim.sweep(SMALL, {"server.latency": [0.001, {"kind": "exponential", "mean": 0.002}]},
                      seeds=1, out=tmp_path / "mixed", processes=1, progress=False)
    # A column of one type: every value as JSON, since one of them is a mapping.
    assert list(table["server.latency"]) == ["0.001", json.dumps({"kind": "exponential", "mean": 0.002},
                                                                 sort_keys=True)]
    assert pd.read_parquet(tmp_path / "mixed" / "sweep.parquet")["server.latency"].tolist() == list(
        table["server.latency"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"seeds": 1.5}, "seeds: must be a number of replications or a list of integer seeds >= 0; got 1.5"),
        ({"seeds": [1, -3]}, "seeds: must be"),
        ({"root_seed": -1}, "root_seed: must be an integer >= 0 or None; got -1"),
        ({"processes": 0}, "processes: must be an integer >= 1, or None for one per CPU; got 0"),
        ({"processes": -2}, "processes: must be an integer >= 1"),
    ],
)
def test_sweep_bad_arguments_named(tmp_path: Path, arguments: dict, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        sim.sweep(SMALL, GRID, **{"seeds": 1, **arguments}, out=tmp_path / "out", progress=False)
    assert message in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_wasted_service_column_is_float_without_waste() -> None:
    # A run where no response is wasted must give the same column types as one where some
    # are, so that tables of several runs can be concatenated.
    result = sim.run(SMALL)

    assert result.timeseries["wasted"].sum() == 0
    assert result.timeseries["wasted_service_s"].dtype == "float64"


def test_bin_edges_refuse_too_many_bins() -> None:
    from sim.tables import bin_edges

    with pytest.raises(ValueError, match=r"run.bin_width: 0.001 s gives 100,000,001 bins"):
        bin_edges(100_000.0, 0.001)


def test_overrides_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"overrides: expected a mapping of dotted paths to values"):
        sim.override(sim.load(SMALL), [("workload.clients", 10)])  # type: ignore[arg-type]


def test_sweep_grid_of_run_seed_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"run.seed: cannot be swept.*pass seeds=\[\.\.\.\]"):
        sim.sweep(SMALL, {"run.seed": [1, 2]}, out=tmp_path / "sweep", processes=1, progress=False)

    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("grid", [[1, 2], "abc", 5], ids=["list-of-numbers", "string", "number"])
def test_sweep_grid_of_wrong_shape_rejected(tmp_path: Path, grid: object) -> None:
    with pytest.raises(ConfigError, match=r"invalid grid; expected a mapping of dotted paths to lists"):
        sim.sweep(SMALL, grid, out=tmp_path / "sweep", processes=1, progress=False)  # type: ignore[arg-type]


def test_sweep_grid_from_a_generator() -> None:
    points = grid_points(point for point in [{"workload.clients": 10}, {"workload.clients": 20}])

    assert points == [{"workload.clients": 10}, {"workload.clients": 20}]
