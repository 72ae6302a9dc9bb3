"""Shared command line of the floor benchmarks: models and the SimPy model, alternating.

Each floor script passes its models, functions that run the polling herd of `scenario.py` and
return (requests or rounds, wall seconds). `main` runs every model and then the SimPy model of
`simpy_compare.py`, `--repeat` times in this process, and prints each rate and the median ratio
of each model to SimPy, counted over the runs that ran side by side.

This module is imported by the scripts beside it and is not run on its own.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from scenario import Scenario
from simpy_compare import run_simpy
from sim.loop import VirtualTimeLoop

Model = Callable[[Scenario], tuple[int, float]]
"""A function that runs the scenario and returns the requests (or rounds) simulated and the wall seconds."""


def time_on_loop(herd: Callable[[VirtualTimeLoop], Coroutine[Any, Any, None]]) -> float:
    """Run `herd(loop)` on a new `VirtualTimeLoop` and return the wall seconds it took.

    The cyclic garbage collector is paused, as the simulator pauses it during a run.
    """
    collecting = gc.isenabled()
    gc.disable()
    loop = VirtualTimeLoop()
    try:
        started = time.perf_counter()
        loop.run_until_complete(herd(loop))
        return time.perf_counter() - started
    finally:
        loop.close()
        if collecting:
            gc.enable()


def main(description: str, models: dict[str, Model]) -> int:
    """Parse `--repeat`, run `models` and SimPy alternately, print the rates; return the exit status.

    Exit status 2 means SimPy is not installed.
    """
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each model and of SimPy (default: 3)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1; got {args.repeat}")
    try:
        import simpy
    except ImportError:
        print("error: SimPy is not installed; install the benchmark extra: pip install -e '.[bench]'",
              file=sys.stderr)
        return 2

    scenario = Scenario()
    print(f"python {sys.version.split()[0]}, simpy {simpy.__version__}, {platform.platform()}")
    ratios: dict[str, list[float]] = {name: [] for name in models}
    for index in range(args.repeat):
        rates = {}
        for name, model in models.items():
            count, wall = model(scenario)
            rates[name] = count / wall
        measurements, simpy_wall = run_simpy(simpy, scenario)
        simpy_rate = measurements.requests / simpy_wall

        parts = [f"{name} {rate:,.0f}" for name, rate in rates.items()]
        print(f"run {index + 1}: {', '.join(parts)}, SimPy {simpy_rate:,.0f} per wall second; ratio "
              + ", ".join(f"{rate / simpy_rate:.2f}" for rate in rates.values()))
        for name, rate in rates.items():
            ratios[name].append(rate / simpy_rate)

    for name, values in ratios.items():
        print(f"median {name} / SimPy ratio: {statistics.median(values):.2f}")
    return 0
