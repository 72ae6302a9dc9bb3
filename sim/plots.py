"""Plots of a run, shared by the CLI and the notebooks.

Every axis says what it shows and its unit, and time axes say that they are simulated time.
Functions draw onto a given matplotlib `Axes` (or make a figure) and return it, so a notebook
can combine them; `save_run_plots` writes the CLI's PNG files.

Figures are `matplotlib.figure.Figure` objects built without pyplot, so writing files needs no
display and no backend, and importing this module leaves the backend alone: a notebook keeps
its inline figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_request_rate", "plot_server_state", "plot_latency", "save_run_plots"]

_OUTCOME_COLOURS = {
    "ok": "#2b8a3e",
    "client_error": "#e8590c",
    "server_error": "#c92a2a",
    "timeout": "#862e9c",
    "connection_error": "#495057",
    "unfinished": "#adb5bd",
}


def plot_request_rate(ax: Axes, timeseries: pd.DataFrame, capacity: float, bin_width: float) -> Axes:
    """Stack the request rate by outcome over simulated time and draw the server's capacity."""
    time = timeseries["time"].to_numpy()
    stacks, labels, colours = [], [], []
    for outcome, colour in _OUTCOME_COLOURS.items():
        series = sum(timeseries[f"{endpoint}_{outcome}"].to_numpy() for endpoint in ("create", "status", "other"))
        if np.any(series):
            stacks.append(series / bin_width)
            labels.append(outcome.replace("_", " "))
            colours.append(colour)
    if stacks:
        ax.stackplot(time, *stacks, labels=labels, colors=colours, step="post", alpha=0.85)
    if np.isfinite(capacity):
        ax.axhline(capacity, color="black", linestyle="--", linewidth=1.2,
                   label=f"capacity {capacity:,.0f} req/s")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel(f"requests sent per second ({bin_width:g} s bins)")
    ax.set_title("Request rate by outcome")
    ax.set_xlim(0, max(float(time[-1]) + bin_width, bin_width) if len(time) else 1.0)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_server_state(ax: Axes, timeseries: pd.DataFrame, workers: int) -> Axes:
    """Draw the time-weighted mean queue length (left axis) and busy workers (right axis)."""
    time = timeseries["time"].to_numpy()
    queue_line = ax.step(time, timeseries["queue_length_mean"], where="post", color="#1864ab",
                         label="queue length (time-weighted mean per bin)")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("requests waiting")
    ax.set_title("Server queue and workers")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)

    right = ax.twinx()
    busy_line = right.step(time, timeseries["busy_workers_mean"], where="post", color="#e67700",
                           label="busy workers (time-weighted mean per bin)")
    right.set_ylabel("busy workers")
    right.set_ylim(0, workers * 1.05)
    lines = queue_line + busy_line
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize="small")
    return ax


def plot_latency(ax: Axes, values: pd.Series | np.ndarray, *, title: str, xlabel: str) -> Axes:
    """Histogram of a latency in simulated seconds, with p50, p90 and p99 marked."""
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.hist(array, bins=min(80, max(10, int(np.sqrt(array.size)))), color="#4c6ef5", alpha=0.8)
        for p, style in zip((50, 90, 99), ("-", "--", ":")):
            value = np.percentile(array, p)
            ax.axvline(value, color="black", linestyle=style, linewidth=1, label=f"p{p} = {value:.2f} s")
        ax.legend(loc="upper right", fontsize="small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("jobs")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def request_rate_figure(timeseries: pd.DataFrame, capacity: float, bin_width: float, workers: int,
                        title: str) -> Figure:
    """Request rate against capacity above the server's queue and busy workers."""
    figure = Figure(figsize=(11, 7.5))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    plot_request_rate(top, timeseries, capacity, bin_width)
    plot_server_state(bottom, timeseries, workers)
    top.set_xlabel("")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def latency_figure(jobs: pd.DataFrame, title: str) -> Figure:
    """Completion latency of completed jobs beside the detection delay of ended jobs."""
    figure = Figure(figsize=(11, 4.5))
    left, right = figure.subplots(1, 2)
    completed = jobs.loc[jobs["outcome"] == "completed", "latency"]
    plot_latency(left, completed, title="Completion latency (completed jobs)",
                 xlabel="start to completion seen by client (simulated s)")
    plot_latency(right, jobs["detection_delay"], title="Detection delay",
                 xlabel="client saw the end minus job ended on server (simulated s)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def save_run_plots(folder: Path, timeseries: pd.DataFrame, jobs: pd.DataFrame, *, capacity: float,
                   bin_width: float, workers: int, name: str) -> list[Path]:
    """Write `requests_per_second.png` and `latency.png` into `folder`; return their paths."""
    paths = []
    for filename, figure in (
        ("requests_per_second.png", request_rate_figure(timeseries, capacity, bin_width, workers, name)),
        ("latency.png", latency_figure(jobs, name)),
    ):
        path = folder / filename
        figure.savefig(path, dpi=110, metadata={"Software": None})
        paths.append(path)
    return paths
