"""Plots of runs and sweeps, shared by the CLI and the notebooks.

Every axis says what it shows and its unit, and time axes say that they are simulated time.
Functions draw onto a given matplotlib `Axes` and return it, so a notebook can combine them:

    fig, ax = plt.subplots()
    plot_request_rates(ax, {"none": a.timeseries, "full": b.timeseries}, capacity=2000, bin_width=1)

`request_rate_figure`, `latency_figure` and `save_run_plots` (the CLI's PNG files) build
`matplotlib.figure.Figure` objects without pyplot, so writing files needs no display and no
backend, and importing this module leaves the backend alone: a notebook keeps its inline
figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.colors
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.analysis import mean_over_seeds, pareto_front

__all__ = [
    "PARAMETER_LABELS",
    "METRIC_LABELS",
    "latency_figure",
    "metric_label",
    "parameter_label",
    "plot_latency",
    "plot_latency_cdfs",
    "plot_queue_lengths",
    "plot_request_rate",
    "plot_request_rates",
    "plot_server_state",
    "plot_sweep_heatmap",
    "plot_sweep_metric",
    "plot_tradeoff",
    "request_rate_figure",
    "save_run_plots",
]

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
    if completed.empty and jobs["latency"].notna().any():
        # A custom client with outcomes of its own ("hit", "miss", ...) completes no job, so
        # show every job's latency rather than an empty panel.
        plot_latency(left, jobs["latency"], title="Job latency (all outcomes)",
                     xlabel="start to end seen by client (simulated s)")
    else:
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


# ----------------------------------------------------------------------------- labels

PARAMETER_LABELS: dict[str, tuple[str, str]] = {
    "client.poll.initial": ("first poll wait", "s"),
    "client.poll.multiplier": ("poll wait multiplier", ""),
    "client.poll.maximum": ("poll wait cap", "s"),
    "client.poll.jitter": ("poll jitter", ""),
    "client.retry.initial": ("first retry wait", "s"),
    "client.retry.multiplier": ("retry wait multiplier", ""),
    "client.retry.maximum": ("retry wait cap", "s"),
    "client.retry.jitter": ("retry jitter", ""),
    "client.max_attempts": ("attempts per request", "attempts"),
    "client.total_timeout": ("total timeout", "s"),
    "client.request_timeout": ("request timeout", "s"),
    "workload.clients": ("number of clients", ""),
    "server.workers": ("server workers", "workers"),
    "server.queue_limit": ("server queue limit", "requests"),
}
"""Axis label and unit of common sweep parameters, by dotted path."""

METRIC_LABELS: dict[str, tuple[str, str]] = {
    "jobs": ("jobs", "jobs"),
    "completed_fraction": ("jobs completed", "% of jobs"),
    "timeout_rate": ("timeout rate", "% of jobs"),
    "failed_fraction": ("jobs not completed", "% of jobs"),
    "completion_mean_s": ("mean completion latency", "simulated s"),
    "completion_p50_s": ("median completion latency", "simulated s"),
    "completion_p90_s": ("p90 completion latency", "simulated s"),
    "completion_p99_s": ("p99 completion latency", "simulated s"),
    "detection_delay_mean_s": ("mean detection delay", "simulated s"),
    "detection_delay_p50_s": ("median detection delay", "simulated s"),
    "detection_delay_p99_s": ("p99 detection delay", "simulated s"),
    "requests": ("requests sent", "requests"),
    "requests_per_job_mean": ("requests per job, mean", "requests"),
    "requests_per_job_p99": ("requests per job, p99", "requests"),
    "retries": ("retries", "requests"),
    "rejected": ("requests rejected", "requests"),
    "peak_rate_rps": ("peak request rate", "requests per simulated s"),
    "peak_to_capacity": ("peak request rate / capacity", "ratio"),
    "wasted_work_fraction": ("wasted service", "% of service time"),
    "drain_s": ("time to drain after the server.schedule window", "simulated s"),
    "peak_after_window_rps": ("peak rate within 30 s after the server.schedule window", "requests per simulated s"),
    "simulated_s": ("run length", "simulated s"),
}
"""Axis label and unit of the headline metrics of `sim.summary.HEADLINE`, by name. Metrics whose
unit starts with `%` are shares from 0 to 1, drawn as percentages."""


def parameter_label(path: str) -> str:
    """Return an axis label for a swept parameter, such as `poll wait cap, client.poll.maximum (s)`."""
    name, unit = PARAMETER_LABELS.get(path, (path, ""))
    if name == path:
        return f"{path} ({unit})" if unit else path
    return f"{name}, {path}" + (f" ({unit})" if unit else "")


def _is_share(metric: str) -> bool:
    return METRIC_LABELS.get(metric, ("", ""))[1].startswith("%")


def metric_label(metric: str) -> str:
    """Return an axis label for a headline metric, such as `p99 completion latency (simulated s)`."""
    name, unit = METRIC_LABELS.get(metric, (metric, ""))
    return f"{name} ({unit})" if unit else name


# ----------------------------------------------------------------------------- comparing runs


def plot_request_rates(ax: Axes, runs: Mapping[str, pd.DataFrame], *, capacity: float, bin_width: float,
                       title: str = "Request rate of each run") -> Axes:
    """Draw the request rate of several runs over simulated time, one labelled line each, against capacity.

    `runs` maps a legend label to a run's time series (`RunResult.timeseries`). The rate
    counts every request sent, including those the server rejected, so it shows the offered
    load. Each legend entry gives the run's peak rate.
    """
    end = 0.0
    for label, timeseries in runs.items():
        time = timeseries["time"].to_numpy()
        rate = timeseries["request_rate"].to_numpy()
        peak = float(rate.max()) if rate.size else 0.0
        ax.step(time, rate, where="post", linewidth=1.4, alpha=0.85,
                label=f"{label} (peak {peak:,.0f} req/s)")
        if time.size:
            end = max(end, float(time[-1]) + bin_width)
    if np.isfinite(capacity):
        ax.axhline(capacity, color="black", linestyle="--", linewidth=1.2,
                   label=f"capacity {capacity:,.0f} req/s")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel(f"requests sent per second ({bin_width:g} s bins)")
    ax.set_title(title)
    ax.set_xlim(0, end or bin_width)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_queue_lengths(ax: Axes, runs: Mapping[str, pd.DataFrame], *, queue_limit: float | None = None,
                       title: str = "Server queue of each run") -> Axes:
    """Draw the time-weighted mean queue length of several runs over simulated time, one labelled line each.

    `runs` maps a legend label to a run's time series. `queue_limit` draws the queue limit,
    beyond which the server rejects requests.
    """
    end = 0.0
    for label, timeseries in runs.items():
        time = timeseries["time"].to_numpy()
        ax.step(time, timeseries["queue_length_mean"], where="post", linewidth=1.4, alpha=0.85, label=label)
        if time.size > 1:
            end = max(end, float(2 * time[-1] - time[-2]))
    if queue_limit is not None:
        ax.axhline(queue_limit, color="black", linestyle="--", linewidth=1.2,
                   label=f"queue limit {queue_limit:,.0f} requests")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("requests waiting (time-weighted mean per bin)")
    ax.set_title(title)
    ax.set_xlim(0, end or 1.0)
    ax.set_ylim(bottom=0)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_latency_cdfs(ax: Axes, samples: Mapping[str, pd.Series | np.ndarray], *, xlabel: str,
                      title: str, percentiles: Sequence[float] = (50, 99), log_x: bool = False) -> Axes:
    """Draw the empirical CDF of each run's latencies, with its percentiles marked and named in the legend.

    `samples` maps a legend label to latencies in simulated seconds (such as the `latency`
    column of completed jobs, or `detection_delay`); missing values are left out. `xlabel`
    should name the latency and its unit. A curve reaches 1 at the run's largest value.
    """
    markers = ("o", "D", "s", "^")
    for label, values in samples.items():
        array = np.asarray(values, dtype=np.float64)
        array = np.sort(array[np.isfinite(array)])
        if array.size == 0:
            ax.plot([], [], label=f"{label}: no data")
            continue
        share = np.arange(1, array.size + 1) / array.size
        (line,) = ax.step(array, share, where="post", linewidth=1.5)
        levels = np.percentile(array, percentiles)
        for index, (p, value) in enumerate(zip(percentiles, levels)):
            ax.plot(value, p / 100, linestyle="none", marker=markers[index % len(markers)],
                    color=line.get_color(), markersize=6, markeredgecolor="black", markeredgewidth=0.5)
        named = ", ".join(f"p{p:g} {value:.1f} s" for p, value in zip(percentiles, levels))
        line.set_label(f"{label}: {named}")
    for index, p in enumerate(percentiles):
        ax.axhline(p / 100, color="grey", linewidth=0.6, linestyle=":")
        ax.plot([], [], linestyle="none", marker=markers[index % len(markers)], color="grey",
                label=f"marker: p{p:g}")
    if log_x:
        ax.set_xscale("log")
    else:
        ax.set_xlim(left=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of jobs at or below (empirical CDF)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


# ----------------------------------------------------------------------------- sweeps


def plot_sweep_heatmap(ax: Axes, table: pd.DataFrame, *, x: str, y: str, metric: str,
                       fmt: str | None = None, cmap: str = "viridis", label: str | None = None) -> Axes:
    """Draw a heatmap of `metric` over two swept parameters, each cell annotated with its value.

    `table` is a sweep table (`sim.sweep`) with columns `x`, `y` and `metric`. Each cell is the
    mean over the seeds of that grid point. A cell with no value (such as a latency when no
    job completed) is grey and reads n/a. `fmt` formats the annotations (by default
    `{:.1%}` for shares and `{:.3g}` otherwise). `label` names the metric and its unit on the
    colour bar and title (by default `metric_label(metric)`). Axes are labelled with the
    parameters' names and units from `PARAMETER_LABELS`.
    """
    share = _is_share(metric) and label is None
    fmt = fmt or ("{:.1%}" if share else "{:.3g}")
    means = mean_over_seeds(table, [x, y], [metric])
    grid = means.pivot(index=y, columns=x, values=metric).sort_index().sort_index(axis=1)
    runs = means["runs"]
    values = grid.to_numpy(dtype=np.float64)
    label = label or metric_label(metric)

    colours = matplotlib.colormaps[cmap].with_extremes(bad="#dee2e6")
    finite = values[np.isfinite(values)]
    norm = matplotlib.colors.Normalize(*(finite.min(), finite.max()) if finite.size else (0.0, 1.0))
    image = ax.imshow(np.ma.masked_invalid(values), origin="lower", aspect="auto", cmap=colours, norm=norm)
    for row in range(values.shape[0]):
        for column in range(values.shape[1]):
            value = values[row, column]
            if np.isfinite(value):
                red, green, blue, _ = colours(norm(value))
                # Dark text on light cells, light text on dark cells (relative luminance).
                text_colour = "black" if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.5 else "white"
                ax.text(column, row, fmt.format(value), ha="center", va="center", color=text_colour,
                        fontsize="small")
            else:
                ax.text(column, row, "n/a", ha="center", va="center", color="black", fontsize="small")

    ax.set_xticks(range(len(grid.columns)), [_tick(value) for value in grid.columns])
    ax.set_yticks(range(len(grid.index)), [_tick(value) for value in grid.index])
    ax.set_xlabel(parameter_label(x))
    ax.set_ylabel(parameter_label(y))
    if runs.min() == runs.max():
        seeds = "1 run per cell" if runs.min() == 1 else f"mean of {runs.min()} seeds per cell"
    else:
        seeds = f"mean of {runs.min()} to {runs.max()} seeds per cell"
    ax.set_title(f"{label}\n{seeds}", fontsize="medium")
    colour_bar = ax.figure.colorbar(image, ax=ax)
    colour_bar.set_label(label)
    if share:
        colour_bar.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    return ax


def plot_sweep_metric(ax: Axes, table: pd.DataFrame, *, x: str, metric: str, group: str | None = None,
                      reference: float | None = None, reference_label: str | None = None,
                      label: str | None = None) -> Axes:
    """Draw a sweep's `metric` against the parameter `x`, one series per value of `group`.

    Each point is the mean over the seeds of a grid point. The single runs are drawn as small
    dots beside it, so the spread between seeds stays visible. A numeric `x` gives lines and a
    text `x` (such as a jitter kind) gives bars. `reference` draws a dashed horizontal line,
    such as the server's capacity, named by `reference_label`. `label` names the metric and
    its unit on the y axis (by default `metric_label(metric)`).
    """
    parameters = [x] if group is None else [group, x]
    means = mean_over_seeds(table, parameters, [metric])
    runs = table[parameters].copy()
    runs[metric] = pd.to_numeric(table[metric], errors="coerce")
    groups = list(dict.fromkeys(means[group])) if group is not None else [None]
    categorical = not pd.api.types.is_numeric_dtype(means[x])
    categories = list(dict.fromkeys(means[x])) if categorical else []
    width = 0.8 / len(groups)

    for index, value in enumerate(groups):
        selected = means if value is None else means[means[group] == value]
        points = runs if value is None else runs[runs[group] == value]
        name = None if value is None else f"{PARAMETER_LABELS.get(group, (group,))[0]} = {_tick(value)}"
        if categorical:
            offset = (index - (len(groups) - 1) / 2) * width
            positions = np.array([categories.index(item) for item in selected[x]]) + offset
            ax.bar(positions, selected[metric], width=width * 0.9, alpha=0.8, label=name)
            colour = "black"
            run_positions = np.array([categories.index(item) for item in points[x]]) + offset
        else:
            ordered = selected.sort_values(x)
            (line,) = ax.plot(ordered[x], ordered[metric], marker="o", linewidth=1.6, label=name)
            colour = line.get_color()
            run_positions = points[x].to_numpy(dtype=np.float64)
        ax.plot(run_positions, points[metric], linestyle="none", marker=".", color=colour, alpha=0.6,
                markeredgecolor="black", markeredgewidth=0.3)

    if categorical:
        ax.set_xticks(range(len(categories)), [_tick(value) for value in categories])
    if reference is not None and math.isfinite(reference):
        ax.axhline(reference, color="black", linestyle="--", linewidth=1.2, label=reference_label)
    ax.set_xlabel(parameter_label(x))
    ax.set_ylabel(label or metric_label(metric))
    ax.set_ylim(bottom=0)
    if _is_share(metric) and label is None:
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    ax.plot([], [], linestyle="none", marker=".", color="black" if categorical else "grey",
            label="single runs (one per seed)")
    ax.legend(fontsize="small")
    return ax


def plot_tradeoff(ax: Axes, table: pd.DataFrame, *, x: str = "requests_per_job_mean",
                  y: str = "detection_delay_mean_s", labels: pd.Series | None = None,
                  front: pd.Series | None = None) -> Axes:
    """Scatter policies by two costs to minimise, with the Pareto-optimal ones marked and numbered.

    Each row of `table` is one policy, for example a row of `sim.analysis.mean_over_seeds`.
    `front` marks the Pareto-optimal rows (by default `pareto_front(table, [x, y])`), which are
    drawn larger and joined by a line. With `labels` (a Series aligned with `table`), they are
    numbered from the lowest `x` up and the legend, placed right of the axes, names each number.
    """
    if front is None:
        front = pareto_front(table, [x, y])
    front = front.to_numpy(dtype=bool)
    xs = pd.to_numeric(table[x], errors="coerce").to_numpy(dtype=np.float64)
    ys = pd.to_numeric(table[y], errors="coerce").to_numpy(dtype=np.float64)

    ax.scatter(xs[~front], ys[~front], s=30, color="#adb5bd", edgecolor="#495057", linewidth=0.5,
               label="dominated: another policy is no worse on both and better on one")
    order = np.argsort(xs[front])
    front_x, front_y = xs[front][order], ys[front][order]
    ax.plot(front_x, front_y, color="#c92a2a", linewidth=1.2, zorder=2)
    ax.scatter(front_x, front_y, s=70, color="#c92a2a", edgecolor="black", linewidth=0.6, zorder=3,
               label="Pareto-optimal: no policy is better on both")
    if labels is not None:
        names = labels.to_numpy()[front][order]
        for number, (px, py, name) in enumerate(zip(front_x, front_y, names), start=1):
            ax.annotate(str(number), (px, py), xytext=(5, 5), textcoords="offset points",
                        fontsize="small", fontweight="bold", color="#c92a2a")
            ax.plot([], [], linestyle="none", label=f"{number}: {name}")
    ax.set_xlabel(metric_label(x))
    ax.set_ylabel(metric_label(y))
    ax.set_title("Cost in requests against delay in seeing a job's end")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return ax


def _tick(value: object) -> str:
    """Return a parameter value as a tick label: `30` for 30.0, text as it is."""
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)
