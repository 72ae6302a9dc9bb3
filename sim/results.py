"""A run's results: its tables and summary in memory, and the folder they are written to.

`collect(data)` turns what a simulation recorded into a `RunResult`. `write_folder` writes it
into a hidden temporary folder next to the destination and renames that into place only once
every file is written, so a results folder that exists is complete; on any error the temporary
folder is removed.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from sim.config import Config, config_to_dict
from sim.engine import SimulationData
from sim.plots import save_run_plots
from sim.summary import summarize, timing
from sim.tables import jobs_frame, requests_frame, timeseries_frame

__all__ = ["RunResult", "collect", "default_folder", "move_into_place", "write_folder", "FILES"]

logger = logging.getLogger("sim.results")

FILES = (
    "config.yaml",
    "summary.json",
    "timing.json",
    "requests.parquet",
    "jobs.parquet",
    "timeseries.parquet",
    "requests_per_second.png",
    "latency.png",
)
"""Files in every results folder."""

_MAX_SUFFIX = 10_000
"""Largest suffix `-N` tried for a results folder whose name is taken."""


@dataclass(frozen=True)
class RunResult:
    """Tables and figures of one run. Times in the tables are simulated seconds."""

    config: Config
    requests: pd.DataFrame
    jobs: pd.DataFrame
    timeseries: pd.DataFrame
    summary: dict[str, Any]
    """Contents of `summary.json`: identical for the same config and seed."""
    timing: dict[str, Any]
    """Contents of `timing.json`: wall-clock figures that vary between runs."""
    data: SimulationData
    folder: Path | None = None
    """Results folder the run was written to, if it was."""


def collect(data: SimulationData) -> RunResult:
    """Build the tables, summary and timing of a finished simulation."""
    requests = requests_frame(data.recorder)
    jobs = jobs_frame(data)
    timeseries = timeseries_frame(data, requests)
    return RunResult(
        config=data.config,
        requests=requests,
        jobs=jobs,
        timeseries=timeseries,
        summary=summarize(data, requests, jobs, timeseries),
        timing=timing(data, len(requests)),
        data=data,
    )


def default_folder(config: Config, root: Path, now: _dt.datetime | None = None) -> Path:
    """Return `root/<UTC timestamp>-<config name>`, the folder a run writes by default."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "-", config.name).strip("-") or "run"
    return root / f"{now:%Y%m%dT%H%M%SZ}-{safe_name}"


def write_folder(result: RunResult, folder: Path, *, plots: bool = True) -> Path:
    """Write every file of `FILES` into `folder` and return the folder written.

    If a folder of that name already exists when the files are complete, a suffix `-2`, `-3`,
    ... is added to the name (see `move_into_place`). `plots=False` leaves out the PNG files,
    which take most of the writing time.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    try:
        _write_files(result, partial, plots)
        folder = move_into_place(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    logger.info("results written to %s", folder)
    return folder


def _write_files(result: RunResult, folder: Path, plots: bool) -> None:
    config = result.config
    (folder / "config.yaml").write_text(
        yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8"
    )
    (folder / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n", encoding="utf-8")
    (folder / "timing.json").write_text(json.dumps(result.timing, indent=2) + "\n", encoding="utf-8")
    for name, frame in (("requests", result.requests), ("jobs", result.jobs), ("timeseries", result.timeseries)):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, folder / f"{name}.parquet", compression="zstd")
    if not plots:
        return
    save_run_plots(
        folder,
        result.timeseries,
        result.jobs,
        capacity=config.server.capacity,
        bin_width=config.run.bin_width,
        workers=config.server.workers,
        name=config.name,
    )


def move_into_place(partial: Path, folder: Path) -> Path:
    """Rename the finished folder `partial` to `folder`, or to the first free `folder-2`, ...

    The free name is chosen at the rename, not when the run started. Runs started in the same
    second pick the same default name. A rename onto a folder that another run has just
    created fails, and the next free name is tried, so each run keeps a folder of its own.
    Returns the folder's final path.
    """
    for _ in range(_MAX_SUFFIX):
        target = free_name(folder)
        try:
            os.rename(partial, target)
            return target
        except OSError:
            if not target.exists():
                raise
            logger.info("results folder %s was taken while this run wrote its files; trying the next name",
                        target)
    raise FileExistsError(f"no free name for results folder {folder}; move or delete older folders of "
                          "that name")


def free_name(folder: Path) -> Path:
    """Return `folder`, or the first of `folder-2`, `folder-3`, ... that does not exist yet."""
    if not folder.exists():
        return folder
    for number in range(2, _MAX_SUFFIX):
        candidate = folder.with_name(f"{folder.name}-{number}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free name for results folder {folder}; move or delete older folders of "
                          "that name")
