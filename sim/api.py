"""The Python API for notebooks and scripts: build a config, run it, get tables back.

    import sim

    config = sim.load("examples/thundering-herd.yaml")
    result = sim.run(config, overrides={"client.poll.jitter": "none", "workload.clients": 1000})
    result.summary["completion_latency_s"]["p99"]
    result.requests, result.jobs, result.timeseries      # pandas DataFrames

`run` takes a `Config`, a path to a YAML file or a dict in the YAML's shape, so a notebook can
start from whichever it has. Runs are deterministic: the same config and seed give the same
tables and summary.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.config import Config, config_from_dict, load_config, override
from sim.engine import simulate
from sim.results import RunResult, collect, write_folder

__all__ = ["ConfigLike", "load", "run"]

logger = logging.getLogger("sim.api")

ConfigLike = Config | str | Path | Mapping[str, Any]
"""A config, a path to a YAML config file, or a dict in the YAML file's shape."""


def load(config: ConfigLike, overrides: Mapping[str, Any] | None = None, *, seed: int | None = None) -> Config:
    """Return a validated `Config` from any `ConfigLike`, with dotted-path `overrides` and `seed` applied.

    Raises `sim.config.ConfigError` naming each invalid field, as the CLI reports it.
    """
    if isinstance(config, Config):
        built = config
    elif isinstance(config, (str, Path)):
        built = load_config(config)
    elif isinstance(config, Mapping):
        built = config_from_dict(dict(config))
    else:
        raise TypeError(f"config: expected a Config, a path to a YAML file or a dict; got {type(config).__name__}")
    if overrides:
        built = override(built, overrides)
    if seed is not None:
        built = override(built, {"run.seed": seed})
    return built


def run(
    config: ConfigLike,
    overrides: Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    out: str | Path | None = None,
    search: str | Path | None = None,
) -> RunResult:
    """Simulate `config` and return its tables and summary.

    `overrides` replace fields by dotted path (`{"client.poll.maximum": 10}`) and `seed`
    replaces `run.seed`. With `out`, the results folder (the CLI's files: Parquet tables,
    summary, plots) is also written there; the folder must not exist yet. `search` is the
    folder tried first for dotted paths to custom clients or server models, by default the
    config file's folder when `config` is a path.
    """
    built = load(config, overrides, seed=seed)
    if search is None and isinstance(config, (str, Path)):
        search = Path(config).resolve().parent
    if out is not None and Path(out).exists():
        raise FileExistsError(f"out: {str(out)!r} already exists; choose a new folder so that no "
                              "earlier results are overwritten")

    result = collect(simulate(built, search=Path(search) if search is not None else None))
    if out is not None:
        folder = write_folder(result, Path(out))
        result = dataclasses.replace(result, folder=folder)
    return result
