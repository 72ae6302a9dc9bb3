"""Analysis of runs and sweeps for notebooks: seed means, Pareto fronts, peaks and drain times.

    import sim
    from sim import analysis

    table = sim.sweep("examples/thundering-herd.yaml", {"client.poll.maximum": [5, 15, 30]}, seeds=3)
    means = analysis.mean_over_seeds(table, ["client.poll.maximum"])
    best = means[analysis.pareto_front(means, ["requests_per_job_mean", "detection_delay_p50_s"])]

Times are simulated seconds and rates are requests per simulated second, as in the tables of
`sim.run`. Sweep tables are the ones `sim.sweep` returns: one row per run, with a column per
swept parameter and the metrics of `sim.summary.HEADLINE`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from client import Backoff, ClientPolicy

__all__ = [
    "Peak",
    "describe_points",
    "mean_over_seeds",
    "pareto_front",
    "peak_rate",
    "point_overrides",
    "policy_source",
    "run_table",
    "time_to_drain",
]

_RUN_COLUMNS = ("seed", "replication", "folder")
"""Columns of a sweep table that describe the run rather than its result."""


class Peak(NamedTuple):
    """The highest request rate in a stretch of a time series."""

    rate_rps: float
    """Requests sent per simulated second in the busiest bin."""
    at_s: float
    """Start of that bin, in simulated seconds."""


# ----------------------------------------------------------------------------- sweep tables


def mean_over_seeds(table: pd.DataFrame, parameters: Sequence[str],
                    metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Average each metric over the replications of every grid point.

    Returns one row per combination of `parameters`, in the order the points first appear in
    `table`, with the mean of each metric and `runs`, the number of rows averaged. By default
    the metrics are every numeric column that is neither a parameter nor `seed`,
    `replication` or `folder`. A missing value (None or NaN, such as a latency when no job
    completed) is left out of its mean, and a point where every run had none gets NaN.
    """
    missing = [name for name in parameters if name not in table.columns]
    if missing:
        raise KeyError(f"parameters {missing} are not columns of the sweep table; "
                       f"its columns are {list(table.columns)}")
    if metrics is None:
        metrics = [name for name in table.columns
                   if name not in parameters and name not in _RUN_COLUMNS
                   and not pd.to_numeric(table[name], errors="coerce").isna().all()]
    numeric = table[list(parameters)].copy()
    for name in metrics:
        numeric[name] = pd.to_numeric(table[name], errors="coerce")
    grouped = numeric.groupby(list(parameters), sort=False, dropna=False)
    means = grouped[list(metrics)].mean()
    means["runs"] = grouped.size()
    return means.reset_index()


def pareto_front(table: pd.DataFrame, objectives: Sequence[str]) -> pd.Series:
    """Mark the rows that no other row beats when every objective is to be minimised.

    A row is dominated when another row is at least as good (<=) on every objective and
    strictly better (<) on at least one. The returned boolean Series, aligned with `table`, is
    True for the rows that are not dominated. Rows with a missing value in any objective are
    never on the front and dominate nothing. Identical rows are all on the front or all off it.
    """
    if not objectives:
        raise ValueError("objectives: name at least one column to minimise")
    values = np.column_stack([pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
                              for name in objectives])
    valid = ~np.isnan(values).any(axis=1)
    candidates = values[valid]
    # dominated[i] when some row j is <= row i everywhere and < somewhere.
    no_worse = (candidates[None, :, :] <= candidates[:, None, :]).all(axis=2)
    better = (candidates[None, :, :] < candidates[:, None, :]).any(axis=2)
    dominated = (no_worse & better).any(axis=1)
    front = np.zeros(len(table), dtype=bool)
    front[np.flatnonzero(valid)[~dominated]] = True
    return pd.Series(front, index=table.index, name="pareto")


def describe_points(table: pd.DataFrame, parameters: Sequence[str],
                    names: Mapping[str, str] | None = None, units: Mapping[str, str] | None = None) -> pd.Series:
    """Label each row by its parameter values, such as `jitter=full, maximum=10 s`.

    `names` maps a parameter to the short name used in the label (by default the last part of
    its dotted path) and `units` maps it to a unit written after the value.
    """
    names = names or {}
    units = units or {}

    def label(row: pd.Series) -> str:
        parts = []
        for parameter in parameters:
            value = row[parameter]
            text = f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)
            unit = units.get(parameter)
            parts.append(f"{names.get(parameter, parameter.rsplit('.', 1)[-1])}={text}{' ' + unit if unit else ''}")
        return ", ".join(parts)

    return table.apply(label, axis=1).rename("label")


def point_overrides(row: pd.Series, parameters: Sequence[str]) -> dict[str, Any]:
    """Return the `parameters` of a sweep table's row as overrides for `sim.run` or `sim.load`.

    Values are converted from numpy scalars, as pandas returns them, to Python numbers,
    because the config loader accepts only Python numbers.
    """
    overrides = {}
    for parameter in parameters:
        value = row[parameter]
        overrides[parameter] = value.item() if isinstance(value, np.generic) else value
    return overrides


def run_table(table: pd.DataFrame, row: Any, name: str = "timeseries", *,
              folder: str | Path | None = None) -> pd.DataFrame:
    """Read table `name` (`requests`, `jobs` or `timeseries`) of one run of a sweep.

    `row` is an index label of `table`. The run's folder is the row's `folder` under the
    sweep's folder, which `sim.sweep` stores in `table.attrs["folder"]`. Pass `folder` when the
    table came from elsewhere, such as `pd.read_parquet(".../sweep.parquet")`.
    """
    root = folder if folder is not None else table.attrs.get("folder")
    if root is None:
        raise ValueError("the sweep folder is unknown: this table has no attrs['folder'] "
                         "(pandas drops it in some operations); pass folder= the sweep's folder")
    path = Path(root) / str(table.loc[row, "folder"]) / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; name must be requests, jobs or timeseries")
    return pd.read_parquet(path)


# ----------------------------------------------------------------------------- time series


def peak_rate(timeseries: pd.DataFrame, start: float = 0.0, end: float = math.inf) -> Peak:
    """Return the highest request rate among the bins that start in [start, end), and when.

    With a synchronized start the first bin contains every client's first request, so
    `peak_rate(timeseries, start=bin_width)` gives the largest wave of retries and polls
    after it. Returns `Peak(0.0, nan)` when no bin starts in the range.
    """
    time = timeseries["time"].to_numpy()
    rate = timeseries["request_rate"].to_numpy()
    inside = (time >= start) & (time < end)
    if not inside.any():
        return Peak(0.0, math.nan)
    index = np.flatnonzero(inside)[int(np.argmax(rate[inside]))]
    return Peak(float(rate[index]), float(time[index]))


def time_to_drain(timeseries: pd.DataFrame, start: float = 0.0, *, queue_threshold: float = 1.0,
                  bin_width: float | None = None) -> float:
    """Return the simulated seconds from `start` until the server has caught up with its backlog.

    A bin counts as overloaded when the server rejected a request because its queue was full,
    or when the time-weighted mean queue length reached `queue_threshold` requests. The drain
    time is the end of the last overloaded bin that starts at or after `start`, minus `start`:
    0.0 when no bin is overloaded, and NaN when the last bin of the run is still overloaded.

    The last overloaded bin, not the first calm one, ends the backlog because without jitter
    retries return in waves: the queue empties between waves and fills again at each one.
    `bin_width` defaults to the spacing of the `time` column.
    """
    time = timeseries["time"].to_numpy()
    if time.size == 0:
        return 0.0
    if bin_width is None:
        if time.size < 2:
            raise ValueError("bin_width: a time series of one bin has no spacing; pass bin_width=")
        bin_width = float(time[1] - time[0])
    overloaded = (timeseries["rejected"].to_numpy() > 0) | (timeseries["queue_length_mean"].to_numpy() >= queue_threshold)
    candidates = np.flatnonzero(overloaded & (time >= start))
    if candidates.size == 0:
        return 0.0
    last = int(candidates[-1])
    if last == time.size - 1:
        return math.nan
    return float(time[last] + bin_width - start)


# ----------------------------------------------------------------------------- client code


def policy_source(policy: ClientPolicy) -> str:
    """Return Python source that builds `policy` with `client.ClientPolicy` and `client.Backoff`.

    Every field of the policy is written out, so the code states the whole policy. A
    `Backoff` lists `initial`, `multiplier`, `maximum` and `jitter`, and `jitter_fraction` only
    where it matters (proportional jitter) or differs from its default.
    """
    lines = ["ClientPolicy("]
    for field in dataclasses.fields(ClientPolicy):
        value = getattr(policy, field.name)
        text = _backoff_source(value) if isinstance(value, Backoff) else repr(value)
        lines.append(f"    {field.name}={text},")
    lines.append(")")
    return "\n".join(lines)


def _backoff_source(backoff: Backoff) -> str:
    parts = [f"initial={backoff.initial!r}", f"multiplier={backoff.multiplier!r}",
             f"maximum={backoff.maximum!r}", f"jitter={backoff.jitter.value!r}"]
    default_fraction = Backoff.__dataclass_fields__["jitter_fraction"].default
    if backoff.jitter.value == "proportional" or backoff.jitter_fraction != default_fraction:
        parts.append(f"jitter_fraction={backoff.jitter_fraction!r}")
    return f"Backoff({', '.join(parts)})"
