"""Parameter sweeps: every point of a grid, over several seeds, in parallel processes.

    import sim

    table = sim.sweep(
        "examples/thundering-herd.yaml",
        grid={"client.poll.jitter": ["none", "full"], "client.poll.maximum": [10, 30, 60]},
        seeds=3,
    )

returns one tidy DataFrame with a row per run: a column per swept parameter (named by its
dotted path), `seed`, `replication`, the headline metrics of `sim.summary.HEADLINE` and the
run's `folder` relative to the sweep's folder.

Seeds are common random numbers: replication r of every grid point runs with the same seed,
derived from the sweep's root seed, so two settings are compared on the same arrivals and
draws rather than on different luck. The table is sorted by grid point and replication, so it
is the same whatever order the processes finish in.

The sweep's folder is written as a hidden partial folder and renamed when every run has
finished. If a run fails or the sweep is interrupted, the partial folder is removed.

NOTE: runs start in new processes ("spawn"), which import the calling script again. A script
that calls `sweep` must do so under `if __name__ == "__main__":`; notebooks need nothing.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import json
import logging
import multiprocessing
import numbers
import os
import re
import shutil
import signal
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.api import ConfigLike, load
from sim.config import Config, ConfigError, config_to_dict, override
from sim.results import default_folder, free_name, move_into_place

__all__ = ["grid_points", "sweep", "sweep_seeds"]

logger = logging.getLogger("sim.sweeps")

Grid = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
"""A mapping from dotted path to the values to try (every combination is run), or an explicit
list of points, each a mapping from dotted path to value."""


@dataclasses.dataclass(frozen=True)
class _Task:
    """One run of a sweep, as sent to a worker process."""

    row: int
    config: Config
    folder: Path
    search: Path | None
    plots: bool


def grid_points(grid: Grid) -> list[dict[str, Any]]:
    """Return the grid's points in order: the product of a mapping's values (last key fastest),
    or the given list of points."""
    if isinstance(grid, Mapping):
        for key, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise ConfigError("<grid>", [f"{key}: invalid grid entry; expected a list of values to try, got {values!r}"])
        keys = list(grid)
        return [dict(zip(keys, combination)) for combination in itertools.product(*(list(grid[k]) for k in keys))]
    points = list(grid) if isinstance(grid, Iterable) and not isinstance(grid, (str, bytes)) else None
    if points is None or not all(isinstance(point, Mapping) for point in points):
        raise ConfigError("<grid>", [f"invalid grid; expected a mapping of dotted paths to lists, or a list "
                                     f"of mappings; got {grid!r}"])
    return [dict(point) for point in points]


def sweep_seeds(root_seed: int, count: int) -> list[int]:
    """Return `count` run seeds derived from `root_seed`, the same for the same arguments."""
    if count < 1:
        raise ConfigError("<sweep>", [f"seeds: must be at least 1 replication; got {count}; pass a count >= 1"])
    children = np.random.SeedSequence(root_seed).spawn(count)
    return [int(child.generate_state(1, np.uint32)[0]) for child in children]


def sweep(
    base: ConfigLike,
    grid: Grid,
    seeds: int | Sequence[int] = 3,
    *,
    root_seed: int | None = None,
    out: str | Path | None = None,
    results_root: str | Path = "results",
    processes: int | None = None,
    progress: bool = True,
    plots: bool = False,
    search: str | Path | None = None,
) -> pd.DataFrame:
    """Run `base` at every point of `grid`, `seeds` times each, and return one row per run.

    `seeds` is a number of replications, whose seeds derive from `root_seed` (by default the
    base config's `run.seed`), or an explicit list of seeds. Every config is built and
    validated before any run starts, so a bad grid fails at once with the path it names.

    Each run writes its results folder under the sweep's folder (`out`, by default
    `results_root/<UTC timestamp>-<name>-sweep`), next to `sweep.parquet`, `sweep.csv` and
    `sweep.json` (the grid, the seeds and what each metric means). `plots=True` adds each
    run's PNG files, at about a second per run. `processes` defaults to the CPU count; 1 runs
    everything in this process, one run after another.
    """
    base_config = load(base)
    if search is None and isinstance(base, (str, Path)):
        search = Path(base).resolve().parent
    _check_arguments(seeds, root_seed, processes)
    points = grid_points(grid)
    if any("run.seed" in point for point in points):
        raise ConfigError("<grid>", ["run.seed: cannot be swept, because every run's seed comes from "
                                     "`seeds` and `root_seed`; pass seeds=[...] to choose the seeds"])
    if isinstance(seeds, numbers.Integral):
        seed_list = sweep_seeds(base_config.run.seed if root_seed is None else int(root_seed), int(seeds))
    else:
        seed_list = [int(seed) for seed in seeds]
    if not points or not seed_list:
        raise ConfigError("<sweep>", ["empty sweep: the grid and the seeds must each give at least one run"])

    # Build every config first, so that a bad path or value fails before anything runs.
    configs = []
    for index, point in enumerate(points):
        source = f"<grid point {index}: {point}>"
        for replication, seed in enumerate(seed_list):
            configs.append((index, replication, override(base_config, {**point, "run.seed": seed}, source=source)))

    if out is not None:
        folder = Path(out)
        if folder.exists():
            raise FileExistsError(f"out: {str(folder)!r} already exists; choose a new folder so that no "
                                  "earlier results are overwritten")
    else:
        # Named by the second it starts; sweeps started in the same second get -2, -3, ...,
        # chosen again when the folder is renamed into place.
        folder = free_name(default_folder(
            dataclasses.replace(base_config, name=f"{base_config.name}-sweep"), Path(results_root)))
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "runs").mkdir(parents=True)

    cells = _parameter_cells(points)
    tasks, rows = [], []
    for row, (index, replication, config) in enumerate(configs):
        name = f"{index:03d}-{_slug(points[index])}-r{replication}"
        tasks.append(_Task(row, config, partial / "runs" / name,
                           Path(search) if search is not None else None, plots))
        rows.append({**{key: column[index] for key, column in cells.items()},
                     "seed": config.run.seed, "replication": replication, "folder": f"runs/{name}"})

    previous_handler = _stop_on_sigterm()
    try:
        metrics = _run_all(tasks, processes, progress, base_config.name)
        for row, values in zip(rows, metrics):
            row.update(values)
        columns = [*cells, "seed", "replication", *metrics[0].keys(), "folder"]
        table = pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))
        _write_sweep_files(partial, table, base_config, grid, points, seed_list, root_seed)
        folder = move_into_place(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    logger.info("sweep of %d runs written to %s", len(tasks), folder)
    table.attrs["folder"] = str(folder)
    return table


def _run_all(tasks: list[_Task], processes: int | None, progress: bool, name: str) -> list[dict[str, Any]]:
    """Run every task, in worker processes unless `processes` is 1; return metrics in task order."""
    workers = min(processes or os.cpu_count() or 1, len(tasks))
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    with _ProgressBar(progress, len(tasks), name) as advance:
        if workers == 1:
            for task in tasks:
                results[task.row] = _run_task(task)
                advance()
            return results  # type: ignore[return-value]

        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                    initializer=_ignore_interrupts) as pool:
            pending = {pool.submit(_run_task, task): task for task in tasks}
            try:
                for future in concurrent.futures.as_completed(pending):
                    task = pending[future]
                    try:
                        results[task.row] = future.result()
                    except BrokenProcessPool:
                        raise
                    except Exception as exc:
                        raise RuntimeError(f"sweep run {task.folder.name} (seed {task.config.run.seed}) "
                                           f"failed: {exc}") from exc
                    advance()
            except BrokenProcessPool as exc:
                _stop_workers(pool)
                raise RuntimeError(
                    "a sweep worker process stopped abruptly. Worker processes import the calling "
                    "script again, so a script must call sim.sweep under "
                    "`if __name__ == \"__main__\":` (a script read from standard input cannot be "
                    "imported at all); otherwise the worker may have run out of memory. "
                    "processes=1 runs the sweep in this process"
                ) from exc
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM) or a run failed: the runs still going are not
                # wanted, so stop the workers rather than wait for them.
                _stop_workers(pool)
                raise
    return results  # type: ignore[return-value]


def _stop_on_sigterm() -> Any:
    """Make SIGTERM stop the sweep as Ctrl-C does, so that its workers and folder are cleaned up.

    Python's default for SIGTERM ends the process at once, which would leave the worker
    processes running and the partial folder on disk. Returns the handler to restore, or None
    where signals cannot be handled (outside the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _ignore_interrupts() -> None:
    """Make a sweep worker ignore Ctrl-C, which the terminal sends to the whole process group.

    The sweep's own process handles it and stops the workers. A worker that handled it too
    would abandon its run half-way and print a traceback and a line for every virtual client.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Terminate `pool`'s worker processes at once and wait for them to exit."""
    # NOTE: ProcessPoolExecutor has no public way to stop busy workers before Python 3.14
    # (terminate_workers), so this reads its private `_processes`.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=10)


def _check_arguments(seeds: Any, root_seed: Any, processes: Any) -> None:
    """Reject sweep arguments of the wrong type or range, naming the argument."""
    problems = []
    if isinstance(seeds, bool) or not (isinstance(seeds, numbers.Integral) or (
            isinstance(seeds, Sequence) and not isinstance(seeds, str)
            and all(isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0
                    for seed in seeds))):
        problems.append(f"seeds: must be a number of replications or a list of integer seeds >= 0; "
                        f"got {seeds!r}")
    if root_seed is not None and (isinstance(root_seed, bool) or not isinstance(root_seed, numbers.Integral)
                                  or root_seed < 0):
        problems.append(f"root_seed: must be an integer >= 0 or None; got {root_seed!r}")
    if processes is not None and (isinstance(processes, bool) or not isinstance(processes, numbers.Integral)
                                  or processes < 1):
        problems.append(f"processes: must be an integer >= 1, or None for one per CPU; got {processes!r}")
    if problems:
        raise ConfigError("<sweep>", problems)


def _parameter_cells(points: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Return each parameter's table cells, one per grid point, all of one type.

    Scalars stay as they are. If a parameter takes a mapping or list anywhere, or mixes kinds
    of scalar (`0.002` beside `{kind: exponential, ...}`), every cell of it is written as
    sorted JSON, because a Parquet column has one type.
    """
    cells: dict[str, list[Any]] = {}
    for key in dict.fromkeys(key for point in points for key in point):
        values = [config_to_dict(point.get(key)) for point in points]
        kinds = {type(value) for value in values if value is not None}
        scalar = all(isinstance(value, (bool, int, float, str)) or value is None for value in values)
        if scalar and (len(kinds) <= 1 or kinds <= {int, float}):
            cells[key] = values
        else:
            cells[key] = [json.dumps(value, sort_keys=True) for value in values]
    return cells


def _run_task(task: _Task) -> dict[str, Any]:
    """Run one config in this process, write its folder and return its headline metrics."""
    from sim.engine import simulate
    from sim.results import collect, write_folder
    from sim.summary import headline

    result = collect(simulate(task.config, search=task.search))
    write_folder(result, task.folder, plots=task.plots)
    return headline(result.summary)


class _ProgressBar:
    """One progress bar over the sweep's runs; calling the context value advances it by one."""

    def __init__(self, enabled: bool, total: int, name: str) -> None:
        self.enabled = enabled
        self.total = total
        self.name = name

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn(f"[bold]{self.name}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("runs"), TimeElapsedColumn())
        self.bar.__enter__()
        task = self.bar.add_task("sweep", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


def _write_sweep_files(folder: Path, table: pd.DataFrame, base: Config, grid: Grid,
                       points: list[dict[str, Any]], seeds: list[int], root_seed: int | None) -> None:
    from sim.summary import HEADLINE

    table.to_parquet(folder / "sweep.parquet", index=False)
    table.to_csv(folder / "sweep.csv", index=False)
    description = {
        "base": config_to_dict(base),
        "grid": [{key: config_to_dict(value) for key, value in point.items()} for point in points],
        "seeds": seeds,
        "root_seed": base.run.seed if root_seed is None else root_seed,
        "metrics": HEADLINE,
    }
    (folder / "sweep.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")


def _cell(value: Any) -> Any:
    """Return a grid value as a table cell: scalars as they are, anything else as sorted JSON."""
    plain = config_to_dict(value)
    if plain is None or isinstance(plain, (bool, int, float, str)):
        return plain
    return json.dumps(plain, sort_keys=True)


def _slug(point: Mapping[str, Any]) -> str:
    """Return a short folder-safe label of a grid point, such as `jitter=full_maximum=30`."""
    parts = [f"{key.rsplit('.', 1)[-1]}={_cell(value)}" for key, value in point.items()]
    return re.sub(r"[^A-Za-z0-9=._-]+", "-", "_".join(parts))[:60].strip("-_") or "point"
