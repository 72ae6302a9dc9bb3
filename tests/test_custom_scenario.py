"""The cache-stampede example: a custom client coroutine and server model run through the CLI.

The example runs with fewer clients here, from a copy of its config in a temporary folder.
`examples/cache_stampede.py` is copied next to that config, because a config's own folder is
the import root of its dotted paths.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.results import FILES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_CONFIG = EXAMPLES / "cache-stampede.yaml"
SCENARIO_MODULE = EXAMPLES / "cache_stampede.py"

LOOKUP_OUTCOMES = {"hit", "miss", "gave_up", "error"}
SMALL_CLIENTS = 300


def example_data() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def write_scenario(folder: Path, data: dict[str, Any]) -> Path:
    """Write config `data` and a copy of the scenario module into `folder`; return the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCENARIO_MODULE, folder / SCENARIO_MODULE.name)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_cli(config: Path, out: Path) -> int:
    return main(["run", str(config), "--out", str(out), "--quiet"])


def single_key_data() -> dict[str, Any]:
    """One key, a short TTL and enough workers and store loads that nothing queues or fails."""
    data = example_data()
    data["server"].update({
        "options": {"ttl": 5.0, "load_time": 0.5, "store_limit": 10_000},
        "workers": 200,
        "service_time": 0.005,
        "latency": 0.001,
    })
    data["workload"].update({
        "clients": 200,
        "jobs_per_client": 30,
        "think_time": {"kind": "exponential", "mean": 1.0},
        "options": {"keys": 1},
    })
    return data


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped example with `SMALL_CLIENTS` clients; everything else as shipped."""
    data = example_data()
    data["workload"]["clients"] = SMALL_CLIENTS
    folder = tmp_path_factory.mktemp("example")
    config = write_scenario(folder, data)
    assert run_cli(config, folder / "out") == 0
    return folder / "out"


@pytest.fixture(scope="module")
def single_key_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("single-key")
    config = write_scenario(folder, single_key_data())
    assert run_cli(config, folder / "out") == 0
    return folder / "out"


def read_summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def test_shipped_config_resolves(capsys: pytest.CaptureFixture[str]) -> None:
    # The validate command resolves both dotted paths with examples/ as the import root.
    assert main(["validate", str(EXAMPLE_CONFIG)]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["workload"]["client"] == "cache_stampede:lookup_client"
    assert resolved["server"]["model"] == "cache_stampede:CacheServer"


def test_run_writes_every_file(example_run: Path) -> None:
    written = sorted(path.name for path in example_run.iterdir())
    assert written == sorted(FILES)


def test_each_lookup_one_outcome(example_run: Path) -> None:
    jobs = pd.read_parquet(example_run / "jobs.parquet")
    lookups = SMALL_CLIENTS * example_data()["workload"]["jobs_per_client"]
    assert len(jobs) == lookups
    assert jobs["outcome"].notna().all()
    assert set(jobs["outcome"].unique()) <= LOOKUP_OUTCOMES
    counts = jobs["outcome"].value_counts()
    assert counts["hit"] > 0
    assert counts["miss"] > 0
    assert counts["hit"] > 5 * counts["miss"]


def test_summary_counts_custom_outcomes(example_run: Path) -> None:
    summary = read_summary(example_run)
    outcomes = summary["jobs"]["outcomes"]
    used = {name for name, count in outcomes.items() if count}
    assert used <= LOOKUP_OUTCOMES
    assert sum(outcomes.values()) == summary["jobs"]["total"]


def test_server_count_equals_requests(example_run: Path) -> None:
    summary = read_summary(example_run)
    requests = pd.read_parquet(example_run / "requests.parquet")
    jobs = pd.read_parquet(example_run / "jobs.parquet")
    assert summary["server"]["received"] == len(requests)
    assert summary["server"]["received"] == int(jobs["requests"].sum())
    assert set(requests["endpoint"].unique()) == {"other"}


def test_retries_match_attempts(example_run: Path) -> None:
    requests = pd.read_parquet(example_run / "requests.parquet")
    jobs = pd.read_parquet(example_run / "jobs.parquet")
    max_attempts = example_data()["client"]["max_attempts"]
    assert int((requests["attempt"] > 1).sum()) == int(jobs["retries"].sum())
    assert (jobs["requests"] == jobs["retries"] + 1).all()
    assert requests["attempt"].max() <= max_attempts
    gave_up = jobs[jobs["outcome"] == "gave_up"]
    assert (gave_up["requests"] == max_attempts).all()


def test_store_limit_answers_503(example_run: Path) -> None:
    summary = read_summary(example_run)
    requests = pd.read_parquet(example_run / "requests.parquet")
    answered_503 = int((requests["status"] == 503).sum())
    # The cold start misses every key at once, so the store rejects loads beyond its limit.
    assert answered_503 > summary["server"]["rejected_queue_full"]
    assert summary["requests"]["retries"] > 0


def test_misses_jump_after_ttl(example_run: Path) -> None:
    # Keys first loaded in the cold start expire together one TTL later. Before that, misses
    # fall as the cache fills, but cold keys from the long tail keep them above zero.
    jobs = pd.read_parquet(example_run / "jobs.parquet")
    ttl = example_data()["server"]["options"]["ttl"]
    missed = jobs["outcome"] == "miss"
    before = missed[(jobs["started_at"] >= ttl - 10) & (jobs["started_at"] < ttl)].mean()
    after = missed[(jobs["started_at"] >= ttl) & (jobs["started_at"] < ttl + 5)].mean()
    assert after > 0.1
    assert after > 2 * before


def single_key_miss_times(folder: Path) -> np.ndarray:
    """Return the simulated times at which the server served each miss, sorted."""
    jobs = pd.read_parquet(folder / "jobs.parquet")
    requests = pd.read_parquet(folder / "requests.parquet")
    assert (jobs["requests"] == 1).all()
    # One request per lookup, so the n-th request of a client belongs to its n-th lookup.
    requests = requests.sort_values(["client", "sent_at"], kind="stable").reset_index(drop=True)
    jobs = jobs.sort_values(["client", "started_at"], kind="stable").reset_index(drop=True)
    assert (requests["client"] == jobs["client"]).all()
    missed = (jobs["outcome"] == "miss").to_numpy()
    return np.sort(requests["service_ended_at"].to_numpy()[missed])


def test_single_key_misses_cluster(single_key_run: Path) -> None:
    options = single_key_data()["server"]["options"]
    ttl, load_time = options["ttl"], options["load_time"]
    times = single_key_miss_times(single_key_run)
    starts = np.flatnonzero(np.diff(times, prepend=-np.inf) > load_time)
    clusters = np.split(times, starts[1:])

    assert len(clusters) >= 4
    for cluster in clusters:
        # A miss starts a load, and every lookup until that load ends misses too.
        assert cluster[-1] - cluster[0] < load_time
    for cluster in clusters[:4]:
        # Later clusters can be single misses once most clients have finished their lookups.
        assert len(cluster) > 10
    for previous, following in zip(clusters, clusters[1:]):
        # The earliest load ends load_time after the first miss and stays fresh for ttl.
        assert following[0] - previous[0] >= ttl + load_time


def test_single_key_never_fails(single_key_run: Path) -> None:
    jobs = pd.read_parquet(single_key_run / "jobs.parquet")
    assert set(jobs["outcome"].unique()) == {"hit", "miss"}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    # Fails if the client or the server draws from anything but the streams herdsim hands them.
    data = example_data()
    data["workload"].update({"clients": 50, "jobs_per_client": 20})
    config = write_scenario(tmp_path, data)
    assert run_cli(config, tmp_path / "first") == 0
    assert run_cli(config, tmp_path / "second") == 0
    for name in ("summary.json", "jobs.parquet", "requests.parquet"):
        first = (tmp_path / "first" / name).read_bytes()
        second = (tmp_path / "second" / name).read_bytes()
        assert first == second, f"{name} differs between two runs with the same seed"


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("workload", "client", "nope:missing",
         ["workload.client", "'nope'", "(the config file's folder)", "add its folder to PYTHONPATH"]),
        ("server", "model", "cache_stampede:Missing", ["server.model", "'Missing'"]),
    ],
    ids=["missing-client", "missing-server"],
)
def test_bad_dotted_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str,
                                 key: str, value: str, expected: list[str]) -> None:
    data = copy.deepcopy(example_data())
    data[section][key] = value
    config = write_scenario(tmp_path, data)
    assert run_cli(config, tmp_path / "out") == 2
    captured = capsys.readouterr()
    for fragment in expected:
        assert fragment in captured.err
    assert captured.out == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("section", "options", "expected"),
    [
        ("server", {"ttl": 0}, "server.options.ttl: must be a number > 0; got 0"),
        ("server", {"store_limit": 2.5}, "server.options.store_limit: must be an integer; got 2.5"),
        ("workload", {"kyes": 10},
         "workload.options.kyes: unknown option; valid options are keys, zipf_exponent"),
    ],
    ids=["zero-ttl", "fractional-limit", "misspelled-option"],
)
def test_bad_option_fails_run(tmp_path: Path, caplog: pytest.LogCaptureFixture, section: str,
                              options: dict[str, Any], expected: str) -> None:
    data = example_data()
    data[section]["options"] = options
    data["workload"]["clients"] = 5
    config = write_scenario(tmp_path, data)
    with caplog.at_level(logging.ERROR, logger="sim.cli"):
        # Options are free-form to the config loader, so the scenario checks them when the run starts.
        assert run_cli(config, tmp_path / "out") == 1
    assert expected in caplog.text
    assert not (tmp_path / "out").exists()
