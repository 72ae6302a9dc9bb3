"""Benchmark: herdsim against an equivalent SimPy model, in simulated requests per wall second.

    python benchmarks/simpy_compare.py --repeat 3

Runs the polling herd of `scenario.py` (5,000 clients and 50 workers by default, all clients
starting at simulated time 0) with two models. herdsim runs the real `TranslationClient`
against the modelled server, and a SimPy model runs the same client and server logic as SimPy
processes. The two alternate, herdsim first, `--repeat` times in this process. Both use the
same seed in every repeat, so each repeat does the same work.

Before the speeds, the script checks that the two models simulate the same thing. Their random
streams differ, so their figures agree only up to sampling noise. The total request count must
agree within 2% and the completion-latency p50 and p99 within 5%. Every herdsim repeat must
also reproduce the first repeat's figures exactly. The script then prints each model's median
simulated requests per wall second and the herdsim/SimPy ratio: the median of the ratios of the
runs that ran side by side. Wall time covers the simulation only, not building the config or
reading the results.

Exit status: 0 when the checks pass, 1 when one fails, 2 when SimPy is not installed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import astuple
from types import ModuleType

import numpy as np

from scenario import (CLIENTS_PER_WORKER, Measurements, Scenario, ScenarioError, herdsim_config, measure_herdsim,
                      scaled_scenario, summarize)
from sim.engine import simulate

COUNT_TOLERANCE = 0.02
"""Largest accepted relative difference of the total request counts."""
PERCENTILE_TOLERANCE = 0.05
"""Largest accepted relative difference of each completion-latency percentile."""


def run_herdsim(scenario: Scenario) -> tuple[Measurements, float]:
    """Run `scenario` with herdsim; return its measurements and the wall seconds of the run."""
    config = herdsim_config(scenario)
    started = time.perf_counter()
    data = simulate(config)
    wall = time.perf_counter() - started
    return measure_herdsim(data), wall


def run_simpy(simpy: ModuleType, scenario: Scenario) -> tuple[Measurements, float]:
    """Run `scenario` as SimPy processes; return its measurements and the wall seconds of the run.

    Each client mirrors `TranslationClient.translate`: a create request, a status request at
    once, then a full-jitter sleep before every further status request. A status request finds
    the job completed when its service ends at or after the job's creation plus its duration,
    as `sim.jobs.JobTable.state` decides. A request occupies one of `workers` worker slots
    (a `simpy.Resource`, FIFO) for the service time.
    """
    started = time.perf_counter()
    env = simpy.Environment()
    workers = simpy.Resource(env, capacity=scenario.workers)
    rng = random.Random(scenario.seed)
    service_time = scenario.service_time
    duration = scenario.job_duration
    initial = scenario.poll_initial
    multiplier = scenario.poll_multiplier
    maximum = scenario.poll_maximum
    latencies: list[float] = []
    requests = 0

    def client() -> Iterator[object]:
        nonlocal requests
        started_at = env.now
        requests += 1
        with workers.request() as slot:
            yield slot
            yield env.timeout(service_time)
        finishes_at = env.now + duration

        polls = 0
        while True:
            requests += 1
            with workers.request() as slot:
                yield slot
                yield env.timeout(service_time)
            if env.now >= finishes_at:
                break
            polls += 1
            capped = min(maximum, initial * multiplier ** (polls - 1))
            yield env.timeout(capped * rng.random())
        latencies.append(env.now - started_at)

    for _ in range(scenario.clients):
        env.process(client())
    env.run()
    wall = time.perf_counter() - started
    return summarize(requests, env.now, np.array(latencies)), wall


def compare(herdsim: Measurements, simpy: Measurements) -> bool:
    """Print the checks of herdsim's figures against SimPy's; return True if all pass."""
    rows = [
        ("requests", herdsim.requests, simpy.requests, COUNT_TOLERANCE, ",.0f"),
        ("latency p50 (s)", herdsim.latency_p50, simpy.latency_p50, PERCENTILE_TOLERANCE, ",.2f"),
        ("latency p99 (s)", herdsim.latency_p99, simpy.latency_p99, PERCENTILE_TOLERANCE, ",.2f"),
    ]
    print(f"{'check':<18}{'herdsim':>12}{'simpy':>12}{'difference':>12}{'tolerance':>11}  result")
    passed = True
    for name, ours, theirs, tolerance, number in rows:
        difference = (ours - theirs) / theirs
        ok = abs(difference) <= tolerance
        passed = passed and ok
        print(f"{name:<18}{ours:>12{number}}{theirs:>12{number}}{difference:>+12.2%}{tolerance:>11.0%}  "
              f"{'ok' if ok else 'FAILED'}")
    print(f"{'simulated end (s)':<18}{herdsim.end_time:>12,.2f}{simpy.end_time:>12,.2f}"
          f"{(herdsim.end_time - simpy.end_time) / simpy.end_time:>+12.2%}{'-':>11}  not checked")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="herdsim and SimPy runs each, alternating (default 3)")
    parser.add_argument("--clients", type=int, default=5000,
                        help=f"virtual clients, with one worker per {CLIENTS_PER_WORKER} (default 5000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of both models (default 1)")
    args = parser.parse_args()
    if args.repeat < 1 or args.clients < 1 or args.seed < 0:
        parser.error("--repeat and --clients must be at least 1 and --seed at least 0")

    try:
        import simpy
    except ImportError:
        print("SimPy is not installed, and this benchmark compares against it. "
              "Install the benchmark extra with: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    scenario = scaled_scenario(args.clients, args.seed)
    print(f"polling herd of {scenario.clients:,} clients and {scenario.workers} workers: {scenario.describe()}")
    print(f"python {sys.version.split()[0]}, simpy {simpy.__version__}, {platform.platform()}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'run':<5}{'model':<9}{'requests':>12}{'sim end (s)':>13}{'wall (s)':>10}{'requests/wall s':>17}")

    herdsim_rates: list[float] = []
    simpy_rates: list[float] = []
    first: tuple[Measurements, Measurements] | None = None
    reproducible = True
    for index in range(args.repeat):
        pair = []
        for name in ("herdsim", "simpy"):
            # Collect the previous run's garbage now, so that no run pays for another's.
            gc.collect()
            try:
                if name == "herdsim":
                    measurements, wall = run_herdsim(scenario)
                else:
                    measurements, wall = run_simpy(simpy, scenario)
            except ScenarioError as exc:
                print(f"{name} run {index + 1} left the scenario: {exc}", file=sys.stderr)
                return 1
            rate = measurements.requests / wall
            (herdsim_rates if name == "herdsim" else simpy_rates).append(rate)
            pair.append(measurements)
            print(f"{index + 1:<5}{name:<9}{measurements.requests:>12,}{measurements.end_time:>13,.1f}"
                  f"{wall:>10.2f}{rate:>17,.0f}")
        if first is None:
            first = (pair[0], pair[1])
        elif astuple(pair[0]) != astuple(first[0]):
            reproducible = False
            print(f"herdsim run {index + 1} differs from run 1 with the same seed: "
                  f"{pair[0]} != {first[0]}", file=sys.stderr)

    print()
    passed = compare(*first)
    if not passed:
        print("FAILED: herdsim and SimPy disagree beyond the tolerance, so their speeds below "
              "are for different work")
    if not reproducible:
        print("FAILED: herdsim gave different figures for the same seed within one process")
    ratios = [ours / theirs for ours, theirs in zip(herdsim_rates, simpy_rates)]
    print()
    print(f"median simulated requests per wall second: herdsim {statistics.median(herdsim_rates):,.0f}, "
          f"simpy {statistics.median(simpy_rates):,.0f}")
    print(f"herdsim/simpy ratio: {statistics.median(ratios):.3f} "
          f"(median of {len(ratios)} side-by-side runs: {', '.join(f'{r:.3f}' for r in ratios)})")
    return 0 if passed and reproducible else 1


if __name__ == "__main__":
    sys.exit(main())
