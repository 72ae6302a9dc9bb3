"""`sim.plots`: labelled axes with units, and no interference with a notebook's backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import sim
from sim import plots

ROOT = Path(__file__).resolve().parent.parent

SMALL = {
    "name": "small",
    "client": {"poll": {"initial": 1.0, "multiplier": 2.0, "maximum": 8.0, "jitter": "full"},
               "total_timeout": 120.0},
    "server": {"workers": 2, "service_time": 0.01, "queue_limit": 20,
               "job_duration": {"kind": "uniform", "low": 5.0, "high": 15.0}},
    "workload": {"clients": 100},
    "run": {"seed": 4},
}


@pytest.fixture(scope="module")
def runs() -> dict[str, sim.RunResult]:
    return {kind: sim.run(SMALL, {"client.poll.jitter": kind}) for kind in ("none", "full")}


@pytest.fixture()
def ax():
    return Figure(figsize=(6, 4)).subplots()


def sweep_table() -> pd.DataFrame:
    """A sweep table of two parameters and two seeds, with one grid point that has no value."""
    rows = []
    for cap in (5.0, 30.0):
        for timeout in (60.0, 300.0):
            for replication in range(2):
                p99 = None if (cap, timeout) == (30.0, 60.0) else cap + timeout / 10 + replication
                rows.append({"client.poll.maximum": cap, "client.total_timeout": timeout, "seed": 7 + replication,
                             "replication": replication, "completion_p99_s": p99,
                             "timeout_rate": 0.1 if timeout == 60.0 else 0.0, "folder": "runs/x"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- backend


def test_import_keeps_backend() -> None:
    code = ("import matplotlib; matplotlib.use('svg'); import sim.plots, sim.results, sim.api; "
            "print(matplotlib.get_backend())")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert output.stdout.strip() == "svg"


def test_run_plots_written_without_pyplot(tmp_path: Path) -> None:
    # Results folders are written with Figure objects alone, so no backend or display is needed.
    code = ("import sys, sim; sim.run(" + repr(SMALL) + f", out={str(tmp_path / 'run')!r}); "
            "print('matplotlib.pyplot' in sys.modules)")
    headless = {name: value for name, value in os.environ.items()
                if name not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                            env=headless)
    assert output.stdout.strip() == "False"
    assert (tmp_path / "run" / "requests_per_second.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "run" / "latency.png").read_bytes().startswith(b"\x89PNG")


# ----------------------------------------------------------------------------- labels


def test_parameter_label_has_path_and_unit() -> None:
    assert plots.parameter_label("client.poll.maximum") == "poll wait cap, client.poll.maximum (s)"
    assert plots.parameter_label("some.other") == "some.other"


def test_metric_label_has_unit() -> None:
    assert plots.metric_label("completion_p99_s") == "p99 completion latency (simulated s)"
    assert plots.metric_label("custom") == "custom"


# ----------------------------------------------------------------------------- runs


def test_request_rates_one_line_per_run(ax, runs) -> None:
    capacity = runs["none"].config.server.capacity
    plots.plot_request_rates(ax, {kind: run.timeseries for kind, run in runs.items()},
                             capacity=capacity, bin_width=1.0)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert len(labels) == 3
    assert labels[0].startswith("none (peak ")
    assert labels[2] == f"capacity {capacity:,.0f} req/s"
    assert ax.get_xlabel() == "simulated time (s)"
    assert ax.get_ylabel() == "requests sent per second (1 s bins)"


def test_queue_lengths_with_limit(ax, runs) -> None:
    plots.plot_queue_lengths(ax, {kind: run.timeseries for kind, run in runs.items()}, queue_limit=20)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["none", "full", "queue limit 20 requests"]
    assert ax.get_xlabel() == "simulated time (s)"


def test_latency_cdfs_name_percentiles(ax, runs) -> None:
    samples = {kind: run.jobs["latency"] for kind, run in runs.items()}
    samples["empty"] = np.array([np.nan])
    plots.plot_latency_cdfs(ax, samples, xlabel="completion latency (simulated s)", title="t")
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    p50 = np.percentile(runs["full"].jobs["latency"].dropna(), 50)
    assert f"full: p50 {p50:.1f} s, p99 " in labels[1]
    assert labels[2] == "empty: no data"
    assert ax.get_ylim() == (0.0, 1.02)


# ----------------------------------------------------------------------------- sweeps


def test_heatmap_annotates_every_cell(ax) -> None:
    plots.plot_sweep_heatmap(ax, sweep_table(), x="client.poll.maximum", y="client.total_timeout",
                             metric="completion_p99_s", fmt="{:.1f}")
    texts = sorted(text.get_text() for text in ax.texts)
    # Means over the two seeds: 5 + 6 + 0.5, 5 + 30 + 0.5, 30 + 30 + 0.5, and one cell without values.
    assert texts == ["11.5", "35.5", "60.5", "n/a"]
    assert ax.get_xlabel() == "poll wait cap, client.poll.maximum (s)"
    assert ax.get_ylabel() == "total timeout, client.total_timeout (s)"
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["5", "30"]
    colour_bar = ax.figure.axes[-1]
    assert colour_bar.get_ylabel() == "p99 completion latency (simulated s)"
    assert "mean of 2 seeds per cell" in ax.get_title()


def test_heatmap_shares_as_percent(ax) -> None:
    plots.plot_sweep_heatmap(ax, sweep_table(), x="client.poll.maximum", y="client.total_timeout",
                             metric="timeout_rate")
    assert sorted({text.get_text() for text in ax.texts}) == ["0.0%", "10.0%"]
    assert ax.figure.axes[-1].get_ylabel() == "timeout rate (% of jobs)"


def test_sweep_metric_numeric_lines(ax) -> None:
    plots.plot_sweep_metric(ax, sweep_table(), x="client.poll.maximum", metric="completion_p99_s",
                            group="client.total_timeout", reference=50.0, reference_label="target")
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["total timeout = 60", "total timeout = 300", "target", "single runs (one per seed)"]
    assert ax.get_ylabel() == "p99 completion latency (simulated s)"


def test_sweep_metric_text_bars(ax) -> None:
    table = pd.DataFrame({"jitter": ["none", "full", "none", "full"], "peak_rate_rps": [10, 20, 30, 40]})
    plots.plot_sweep_metric(ax, table, x="jitter", metric="peak_rate_rps")
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["none", "full"]
    assert [patch.get_height() for patch in ax.patches] == [20.0, 30.0]


def test_tradeoff_numbers_front(ax) -> None:
    table = pd.DataFrame({"requests_per_job_mean": [5.0, 8.0, 9.0, 6.0],
                          "detection_delay_mean_s": [9.0, 2.0, 3.0, 5.0]})
    labels = pd.Series(["slow", "fast", "worse", "middle"])
    plots.plot_tradeoff(ax, table, labels=labels)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend[2:] == ["1: slow", "2: middle", "3: fast"]
    assert sorted(text.get_text() for text in ax.texts) == ["1", "2", "3"]
    assert ax.get_xlabel() == "requests per job, mean (requests)"
    assert ax.get_ylabel() == "mean detection delay (simulated s)"


def test_latency_figure_shows_custom_outcomes() -> None:
    # A custom client names its own outcomes and completes no job.
    jobs = pd.DataFrame({"outcome": ["hit", "miss", "hit", "gave_up"], "latency": [0.01, 0.2, 0.02, 1.5],
                         "detection_delay": [np.nan] * 4})

    figure = plots.latency_figure(jobs, "custom")

    left = figure.axes[0]
    assert left.get_title() == "Job latency (all outcomes)"
    assert len(left.patches) > 0


def test_latency_figure_keeps_completed_jobs_only() -> None:
    jobs = pd.DataFrame({"outcome": ["completed", "timeout"], "latency": [3.0, 60.0],
                         "detection_delay": [0.5, np.nan]})

    figure = plots.latency_figure(jobs, "translation")

    assert figure.axes[0].get_title() == "Completion latency (completed jobs)"
