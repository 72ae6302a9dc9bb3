"""Command line: `python -m sim run|serve|validate CONFIG`.

Exit status: 0 on success, 2 for an invalid config or invalid arguments (nothing is written),
1 when a run fails for another reason (nothing is written either).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import tempfile
import sys
from pathlib import Path
from typing import Any

import yaml

from sim.config import Config, ConfigError, config_to_dict, load_config

__all__ = ["main"]

logger = logging.getLogger("sim.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sim",
        description="Simulate thousands of polling clients against a modelled job server.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a simulation and write a results folder")
    run.add_argument("config", type=Path, help="YAML config file")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None,
                     help="results folder to create (default: results/<UTC timestamp>-<config name>)")
    where.add_argument("--results-root", type=Path, default=Path("results"),
                     help="parent of the default results folder (default: ./results)")
    run.add_argument("--seed", type=int, default=None, help="root seed, overriding run.seed")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    run.add_argument("--client-log-level", default="ERROR",
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="level of the client's own log lines during the run (default: ERROR, "
                          "because every virtual client logs each retry)")

    serve = commands.add_parser("serve", help="run the real job server on 127.0.0.1")
    serve.add_argument("config", type=Path, help="YAML config file; its server section is used")
    serve.add_argument("--host", default=None, help="address to bind (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default: server.port)")
    serve.add_argument("--seed", type=int, default=None, help="seed of job durations and outcomes")

    validate = commands.add_parser("validate", help="check a config and print it with defaults filled in")
    validate.add_argument("config", type=Path, help="YAML config file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    try:
        config = load_config(args.config)
        if getattr(args, "seed", None) is not None:
            if args.seed < 0:
                print(f"error: --seed must be an integer >= 0; got {args.seed}", file=sys.stderr)
                return EXIT_USAGE
            config = config.with_seed(args.seed)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if args.command in ("run", "validate"):
        from sim.plugins import resolve

        try:
            plugins = resolve(config, args.config.resolve().parent, source=str(args.config))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        args.plugins = plugins

    if args.command == "validate":
        sys.stdout.write(yaml.safe_dump(config_to_dict(config), sort_keys=False))
        return EXIT_OK
    if args.command == "serve":
        return _serve(config, args)
    return _run(config, args)


def _serve(config: Config, args: argparse.Namespace) -> int:
    from sim.app import serve

    port = config.server.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        print(f"error: --port must be in 0..65535; got {port}", file=sys.stderr)
        return EXIT_USAGE
    try:
        serve(config.server, seed=config.run.seed if args.seed is None else args.seed,
              host=args.host, port=port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host or config.server.host}:{port}: {exc.strerror or exc}; "
              "choose another port with --port (0 picks a free one)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _run(config: Config, args: argparse.Namespace) -> int:
    from sim.engine import simulate
    from sim.results import collect, default_folder, write_folder

    folder = args.out if args.out is not None else default_folder(config, args.results_root)
    if args.out is not None and args.out.exists():
        print(f"error: --out {args.out} already exists; choose a new folder so that no earlier "
              "results are overwritten", file=sys.stderr)
        return EXIT_USAGE

    # Check where the results go before simulating, so that a bad path fails in a second
    # instead of after the whole run.
    parent = folder.parent
    existing = next((path for path in (parent, *parent.parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():
        option = "--out" if args.out is not None else "--results-root"
        print(f"error: {option}: {str(existing)!r} is a file, not a folder; choose a path under a "
              "folder", file=sys.stderr)
        return EXIT_USAGE
    if existing is not None:
        # A real folder made and removed, not os.access: /proc, for one, passes root's
        # permission check and still refuses a new folder.
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".herdsim-check-", dir=existing))
        except OSError as exc:
            option = "--out" if args.out is not None else "--results-root"
            print(f"error: {option}: cannot create a folder in {str(existing)!r} ({exc.strerror or exc}); "
                  "choose a folder you can write to", file=sys.stderr)
            return EXIT_USAGE

    client_level = getattr(logging, args.client_log_level)
    # SIGTERM (from `timeout`, CI or a container) stops the run like Ctrl-C does, so that a
    # half-written results folder is removed in both cases.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    missing_parents = [path for path in folder.parents if not path.exists()]
    try:
        if args.quiet:
            data = simulate(config, client_log_level=client_level, plugins=args.plugins)
        else:
            data = _simulate_with_progress(config, client_level, args.plugins)
        result = collect(data)
        folder = write_folder(result, folder)
    except KeyboardInterrupt:
        _remove_empty(missing_parents)
        print("interrupted; no results folder was written", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Exit at once: tearing down thousands of suspended virtual clients one by one takes
        # seconds and only produces noise, and nothing is left on disk to clean up.
        os._exit(130)
    except Exception:
        _remove_empty(missing_parents)
        logger.exception("run of %s failed; no results folder was written", args.config)
        return EXIT_FAILED

    if not args.quiet:
        _print_summary(result.summary, result.timing)
        print(f"results: {folder}")
    else:
        print(folder)
    return EXIT_OK


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed run created for its results, nearest first, while empty."""
    for path in folders:
        try:
            path.rmdir()
        except OSError:
            return


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _simulate_with_progress(config: Config, client_level: int, plugins: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sim.engine import simulate

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("clients done"),
        TextColumn("t = {task.fields[now]:,.1f} s simulated"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(config.name, total=config.workload.clients, now=0.0)

        def report(now: float, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, now=now)

        return simulate(config, progress=report, client_log_level=client_level, plugins=plugins)


def _print_summary(summary: dict[str, Any], timing: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:,.2f} s"

    table = Table(title=f"{summary['name']} (seed {summary['seed']})", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")

    jobs = summary["jobs"]
    outcomes = ", ".join(f"{name} {count:,}" for name, count in jobs["outcomes"].items() if count)
    clients = summary["clients"]
    dropped = clients.get("arrivals_dropped", 0)
    table.add_row("clients started", f"{clients['started']:,} of {clients['configured']:,}"
                  + (f" ({dropped:,} arrivals dropped)" if dropped else ""))
    table.add_row("jobs", f"{jobs['total']:,} ({outcomes})")
    for key, label in (("completion_latency_s", "completion latency"), ("detection_delay_s", "detection delay")):
        figures = summary[key]
        table.add_row(
            label,
            f"p50 {seconds(figures['p50'])}  p90 {seconds(figures['p90'])}  "
            f"p99 {seconds(figures['p99'])}  max {seconds(figures['max'])}",
        )
    per_job = summary["requests_per_job"]
    if per_job["count"]:
        table.add_row("requests per job", f"mean {per_job['mean']:.2f}  p99 {per_job['p99']:.0f}  max {per_job['max']:.0f}")
    requests = summary["requests"]
    table.add_row("requests", f"{requests['total']:,} ({requests['retries']:,} retries)")
    server = summary["server"]
    whole_run = " (whole run)" if summary["warmup_s"] else ""
    table.add_row(f"rejected (queue full){whole_run}", f"{server['rejected_queue_full']:,}")
    peak = summary["peak_request_rate"]
    ratio = peak["ratio_to_capacity"]
    table.add_row(
        "peak request rate",
        f"{peak['requests_per_second']:,.0f} req/s at t={peak['at_s']:,.0f} s"
        + (f" ({ratio:.2f}x capacity {peak['capacity_rps']:,.0f} req/s)" if ratio is not None else ""),
    )
    table.add_row("simulated time", seconds(summary["simulated_seconds"]))
    table.add_row("wall time of the simulation", seconds(timing["wall_seconds"]))
    rate = timing["simulated_requests_per_wall_second"]
    table.add_row("simulated requests per wall second", "-" if rate is None else f"{rate:,.0f}")
    Console().print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
