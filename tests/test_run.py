"""End-to-end runs through the CLI: files written, determinism, invariants, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.config import load_config
from sim.results import FILES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SMALL_HERD = {
    "name": "small-herd",
    "client": {
        "poll": {"initial": 1.0, "multiplier": 2.0, "maximum": 30.0, "jitter": "equal"},
        "retry": {"initial": 1.0, "multiplier": 2.0, "maximum": 30.0, "jitter": "equal"},
        "max_attempts": 6,
        "total_timeout": 300.0,
        "request_timeout": 10.0,
    },
    "server": {
        "workers": 4,
        "service_time": {"kind": "exponential", "mean": 0.01},
        "queue_limit": 50,
        "latency": 0.002,
        "job_duration": {"kind": "lognormal", "median": 8.0, "sigma": 0.5},
        "job_error_probability": 0.1,
    },
    "workload": {"clients": 400, "arrival": {"kind": "at_once"}},
    "run": {"seed": 11},
}


def write_config(folder: Path, data: dict, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_cli(config: Path, out: Path, *extra: str) -> int:
    return main(["run", str(config), "--out", str(out), "--quiet", *extra])


@pytest.fixture(scope="module")
def herd_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The small herd run twice with seed 11 and once with seed 12."""
    folder = tmp_path_factory.mktemp("herd")
    config = write_config(folder, SMALL_HERD)
    runs = {"first": folder / "first", "second": folder / "second", "other_seed": folder / "other"}
    assert run_cli(config, runs["first"]) == 0
    assert run_cli(config, runs["second"]) == 0
    assert run_cli(config, runs["other_seed"], "--seed", "12") == 0
    return runs


def test_run_writes_every_file(herd_runs: dict[str, Path]) -> None:
    written = sorted(path.name for path in herd_runs["first"].iterdir())
    assert written == sorted(FILES)


def test_run_leaves_no_partial_folder(herd_runs: dict[str, Path]) -> None:
    hidden = [path.name for path in herd_runs["first"].parent.iterdir() if path.name.startswith(".")]
    assert hidden == []


@pytest.mark.parametrize("name", ["summary.json", "requests.parquet", "jobs.parquet", "timeseries.parquet", "config.yaml"])
def test_same_seed_same_bytes(herd_runs: dict[str, Path], name: str) -> None:
    first = (herd_runs["first"] / name).read_bytes()
    second = (herd_runs["second"] / name).read_bytes()
    assert first == second


def test_other_seed_other_numbers(herd_runs: dict[str, Path]) -> None:
    first = json.loads((herd_runs["first"] / "summary.json").read_text())
    other = json.loads((herd_runs["other_seed"] / "summary.json").read_text())
    assert other["seed"] == 12
    assert first["completion_latency_s"] != other["completion_latency_s"]
    assert first["requests"]["total"] != other["requests"]["total"]


def test_resolved_config_has_seed_and_defaults(herd_runs: dict[str, Path]) -> None:
    resolved = yaml.safe_load((herd_runs["other_seed"] / "config.yaml").read_text())
    assert resolved["run"]["seed"] == 12
    assert resolved["run"]["bin_width"] == 1.0
    assert resolved["server"]["faults"] == []


def test_every_job_has_one_outcome(herd_runs: dict[str, Path]) -> None:
    jobs = pd.read_parquet(herd_runs["first"] / "jobs.parquet")
    assert len(jobs) == SMALL_HERD["workload"]["clients"]
    assert jobs["client"].is_unique
    assert jobs["outcome"].notna().all()
    assert set(jobs["outcome"].unique()) <= {"completed", "error"}


def test_server_count_equals_client_count(herd_runs: dict[str, Path]) -> None:
    summary = json.loads((herd_runs["first"] / "summary.json").read_text())
    jobs = pd.read_parquet(herd_runs["first"] / "jobs.parquet")
    requests = pd.read_parquet(herd_runs["first"] / "requests.parquet")
    assert summary["server"]["received"] == int(jobs["requests"].sum())
    assert summary["server"]["received"] == len(requests)


def test_herd_exceeds_capacity(herd_runs: dict[str, Path]) -> None:
    summary = json.loads((herd_runs["first"] / "summary.json").read_text())
    peak = summary["peak_request_rate"]
    assert peak["ratio_to_capacity"] > 1
    assert peak["at_s"] == 0
    assert summary["server"]["rejected_queue_full"] > 0


def test_rejected_requests_were_retried(herd_runs: dict[str, Path]) -> None:
    summary = json.loads((herd_runs["first"] / "summary.json").read_text())
    assert summary["requests"]["retries"] == summary["server"]["rejected_queue_full"]


def test_timeseries_counts_every_request(herd_runs: dict[str, Path]) -> None:
    series = pd.read_parquet(herd_runs["first"] / "timeseries.parquet")
    requests = pd.read_parquet(herd_runs["first"] / "requests.parquet")
    assert int(series["requests"].sum()) == len(requests)
    assert (series["busy_workers_max"] <= SMALL_HERD["server"]["workers"]).all()
    assert (series["queue_length_max"] <= SMALL_HERD["server"]["queue_limit"]).all()


def test_detection_delay_not_negative(herd_runs: dict[str, Path]) -> None:
    jobs = pd.read_parquet(herd_runs["first"] / "jobs.parquet")
    ended = jobs.dropna(subset=["detection_delay"])
    assert len(ended) == len(jobs)
    assert (ended["detection_delay"] >= 0).all()


def test_duration_marks_jobs_unfinished(tmp_path: Path) -> None:
    data = {**SMALL_HERD, "workload": {"clients": 100, "arrival": {"kind": "uniform", "window": 20.0}},
            "run": {"seed": 3, "duration": 10.0}}
    config = write_config(tmp_path, data)
    assert run_cli(config, tmp_path / "out") == 0
    jobs = pd.read_parquet(tmp_path / "out" / "jobs.parquet")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["simulated_seconds"] == 10.0
    assert summary["jobs"]["outcomes"]["unfinished"] > 0
    assert len(jobs) == summary["clients"]["started"]
    assert summary["clients"]["started"] < 100
    assert summary["server"]["received"] <= summary["requests"]["total"]


def test_out_folder_must_be_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, SMALL_HERD)
    (tmp_path / "taken").mkdir()
    assert run_cli(config, tmp_path / "taken") == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc, which refuses new folders")
def test_out_where_folders_cannot_be_made(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # /proc passes a write-permission check for root but refuses mkdir: found before the run.
    config = write_config(tmp_path, SMALL_HERD)

    assert run_cli(config, Path("/proc/herdsim-test")) == 2
    assert "--out: cannot create a folder in '/proc'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"server": {"wrokers": 4}}, ["server.wrokers", "did you mean 'workers'"]),
        ({"server": {"workers": -5}}, ["server.workers", ">= 1", "-5"]),
        ({"server": {"workers": "ten"}}, ["server.workers", "'ten'"]),
        ({"client": {"total_timeout": "long"}}, ["client.total_timeout", "'long'"]),
    ],
    ids=["misspelled-key", "negative-capacity", "string-for-number", "string-for-timeout"],
)
def test_invalid_config_exits_2(tmp_path: Path, change: dict, expected: list[str]) -> None:
    config = write_config(tmp_path, change, "bad.yaml")
    results_root = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "sim", "run", str(config), "--results-root", str(results_root)],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2
    for fragment in expected:
        assert fragment in completed.stderr
    assert completed.stdout == ""
    assert not results_root.exists()


def test_negative_seed_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, SMALL_HERD)
    assert run_cli(config, tmp_path / "out", "--seed", "-1") == 2
    assert "--seed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_validate_prints_resolved_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {"workload": {"clients": 3}})
    assert main(["validate", str(config)]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["name"] == "config"
    assert resolved["workload"]["clients"] == 3
    assert resolved["client"]["max_attempts"] == 6


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_example_config_is_valid(path: Path) -> None:
    config = load_config(path)
    assert config.name == path.stem


def test_attempt_numbers_match_retries(herd_runs: dict[str, Path]) -> None:
    requests = pd.read_parquet(herd_runs["first"] / "requests.parquet")
    jobs = pd.read_parquet(herd_runs["first"] / "jobs.parquet")
    assert int((requests["attempt"] > 1).sum()) == int(jobs["retries"].sum())
    assert requests["attempt"].min() == 1
    assert requests["attempt"].max() <= SMALL_HERD["client"]["max_attempts"]


def test_polls_counted_per_job(herd_runs: dict[str, Path]) -> None:
    requests = pd.read_parquet(herd_runs["first"] / "requests.parquet")
    jobs = pd.read_parquet(herd_runs["first"] / "jobs.parquet").set_index("client")
    pending = requests[(requests["endpoint"] == "status") & (requests["outcome"] == "ok")]
    answered_polls = pending.groupby("client", observed=True).size()
    # Every successful status response but the last of each job reported "pending".
    assert (jobs.loc[answered_polls.index, "polls"] == answered_polls - 1).all()


def test_zero_service_time_runs(tmp_path: Path) -> None:
    # Infinite capacity: the summary has no capacity ratio and the table must still print.
    config = write_config(tmp_path, {"server": {"service_time": 0, "latency": 0}, "workload": {"clients": 20}})
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["peak_request_rate"]["ratio_to_capacity"] is None


def test_duplicate_key_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "dup.yaml"
    config.write_text("workload: {clients: 5}\nworkload: {clients: 7}\n", encoding="utf-8")
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "duplicate key 'workload'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_yaml_12_exponent_is_number(tmp_path: Path) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text("server: {service_time: {kind: exponential, mean: 5e-3}}\n", encoding="utf-8")
    assert load_config(config).server.service_time.mean == 0.005


def test_missing_distribution_parameter_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {"server": {"latency": {"kind": "constant"}}})
    assert main(["validate", str(config)]) == 2
    assert "server.latency.value: missing" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--out", "--results-root"])
def test_output_under_file_exits_2_before_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              option: str) -> None:
    config = tmp_path / "small.yaml"
    config.write_text("workload: {clients: 5}\n", encoding="utf-8")
    (tmp_path / "taken").write_text("not a folder", encoding="utf-8")
    assert main(["run", str(config), option, str(tmp_path / "taken" / "sub"), "--quiet"]) == 2
    assert f"error: {option}: " in capsys.readouterr().err
    assert (tmp_path / "taken").read_text(encoding="utf-8") == "not a folder"


def test_failed_write_leaves_no_new_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A disk that fills up while the plots are written, after the results' parent folders exist.
    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sim.results.save_run_plots", disk_full)
    config = tmp_path / "small.yaml"
    config.write_text("workload: {clients: 3}\n", encoding="utf-8")
    assert main(["run", str(config), "--out", str(tmp_path / "new" / "deeper" / "run"), "--quiet"]) == 1
    assert not (tmp_path / "new").exists()


def test_out_and_results_root_together_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, SMALL_HERD)

    with pytest.raises(SystemExit) as caught:
        main(["run", str(config), "--out", str(tmp_path / "a"), "--results-root", str(tmp_path / "b")])

    assert caught.value.code == 2
    assert "--results-root: not allowed with argument --out" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
