"""Benchmark: how herdsim's wall time and memory grow with the number of clients.

    python benchmarks/scale.py                       # 10,000, 30,000 and 100,000 clients
    python benchmarks/scale.py --sizes 1000 3000     # quicker sizes

Runs the polling herd of `scenario.py` once per size: all clients start at simulated time 0,
send about 20 requests each, and share one server worker per 100 clients. Each size runs in a
fresh Python subprocess, so that its peak resident memory is its own. For each size it prints
the wall time of the simulation (not of imports, config building or reading results), the
simulated requests and requests per wall second. It also prints the child's peak resident set
size (`ru_maxrss`) and a baseline RSS read after the imports and the config, before the run.
Bytes per request is peak minus baseline, divided by the requests. It covers the recorder's
columns and every other object alive at the peak, such as each client's task, session and
random generator. The last column is the wall time per request divided by that of the first
size. Values near 1.0 everywhere mean the cost grows linearly with the requests.

    python benchmarks/scale.py --single 5000         # one size in this process, as JSON

`--single` is what each subprocess runs. It is also a handy target for a profiler, for example
`python -m cProfile -s tottime benchmarks/scale.py --single 5000`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from scenario import CLIENTS_PER_WORKER, ScenarioError, herdsim_config, max_rss_bytes, measure_herdsim, scaled_scenario
from sim.engine import simulate

DEFAULT_SIZES = (10_000, 30_000, 100_000)
MEGABYTE = 1024 * 1024


def run_single(clients: int, seed: int) -> dict[str, float]:
    """Run the scenario once with `clients` clients and return its figures, in bytes and seconds."""
    scenario = scaled_scenario(clients, seed)
    config = herdsim_config(scenario)
    baseline = max_rss_bytes()
    started = time.perf_counter()
    data = simulate(config)
    wall = time.perf_counter() - started
    # Read the peak before measuring, so the arrays `measure_herdsim` builds do not count.
    peak = max_rss_bytes()
    measurements = measure_herdsim(data)
    return {
        "clients": clients,
        "workers": scenario.workers,
        "requests": measurements.requests,
        "end_time": measurements.end_time,
        "wall": wall,
        "baseline_rss": baseline,
        "peak_rss": peak,
    }


def run_in_subprocess(clients: int, seed: int) -> dict[str, float]:
    """Run one size in a fresh interpreter and return the figures it prints as JSON.

    Raises `RuntimeError` with the child's stderr if it fails.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--single", str(clients), "--seed", str(seed)]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"the run with {clients:,} clients failed with exit status "
                           f"{finished.returncode}:\n{finished.stderr.strip()}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def print_table(results: list[dict[str, float]]) -> None:
    """Print one row per size, with the cost per request relative to the first row."""
    print(f"{'clients':>9}{'workers':>9}{'requests':>12}{'sim end (s)':>13}{'wall (s)':>10}{'requests/wall s':>17}"
          f"{'peak RSS (MB)':>15}{'baseline (MB)':>15}{'bytes/request':>15}{'wall/request vs first':>23}")
    first_cost = results[0]["wall"] / results[0]["requests"]
    for row in results:
        cost = row["wall"] / row["requests"]
        per_request = (row["peak_rss"] - row["baseline_rss"]) / row["requests"]
        print(f"{row['clients']:>9,}{row['workers']:>9,}{row['requests']:>12,}{row['end_time']:>13,.1f}{row['wall']:>10.2f}"
              f"{row['requests'] / row['wall']:>17,.0f}{row['peak_rss'] / MEGABYTE:>15,.0f}"
              f"{row['baseline_rss'] / MEGABYTE:>15,.0f}{per_request:>15,.0f}{cost / first_cost:>23.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                        help="client counts to run, each in its own subprocess (default 10000 30000 100000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every run (default 1)")
    parser.add_argument("--single", type=int, metavar="CLIENTS",
                        help="run one size in this process and print its figures as one JSON line")
    args = parser.parse_args()
    if args.seed < 0 or any(size < 1 for size in args.sizes) or (args.single is not None and args.single < 1):
        parser.error("client counts must be at least 1 and --seed at least 0")

    if args.single is not None:
        try:
            print(json.dumps(run_single(args.single, args.seed)))
        except ScenarioError as exc:
            print(f"the run with {args.single:,} clients left the scenario: {exc}", file=sys.stderr)
            return 1
        return 0

    sizes = ", ".join(f"{size:,}" for size in args.sizes)
    print(f"polling herd of {sizes} clients, one worker per {CLIENTS_PER_WORKER} clients: "
          f"{scaled_scenario(args.sizes[0], args.seed).describe()}")
    print(f"python {sys.version.split()[0]}, {platform.platform()}, {os.cpu_count()} CPUs")
    results = []
    for size in args.sizes:
        try:
            results.append(run_in_subprocess(size, args.seed))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"  {size:,} clients done in {results[-1]['wall']:.1f} s", file=sys.stderr)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
