"""Probability distributions for service times, latencies and job durations.

Each distribution is a small frozen dataclass named by its `kind` in the config:

    service_time: {kind: exponential, mean: 0.01}
    job_duration: {kind: lognormal, median: 20, sigma: 0.5}
    latency: 0.002            # a bare number is a constant
    service_time: {kind: empirical, file: service-times.csv, column: seconds}

All values are in seconds. A `Sampler` draws from one distribution with its own numpy
generator, a block at a time, because one numpy call per scalar costs more than the simulation
step that uses it. `sample(rng)` draws one value from a client's own `random.Random`, for
per-client quantities such as think time.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from client.validation import FieldError, check_fields

__all__ = [
    "Constant",
    "Distribution",
    "Empirical",
    "Exponential",
    "LogNormal",
    "Sampler",
    "Uniform",
    "DISTRIBUTIONS",
    "SAMPLE_UNITS",
    "SampleFileError",
    "read_samples",
]

_BLOCK = 4096  # draws per refill; fixed, because it decides which numbers a seed yields


@dataclass(frozen=True, slots=True)
class Constant:
    """Always `value` seconds."""

    kind: ClassVar[str] = "constant"
    value: float = field(metadata={"ge": 0, "unit": "s"})

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def mean(self) -> float:
        return self.value

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value)

    def sample(self, rng: random.Random) -> float:
        return self.value


@dataclass(frozen=True, slots=True)
class Exponential:
    """Exponential with the given `mean` in seconds: the memoryless service of M/M/c queues."""

    kind: ClassVar[str] = "exponential"
    mean: float = field(metadata={"gt": 0, "unit": "s"})

    def __post_init__(self) -> None:
        check_fields(self)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean, size)

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean)


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform on [`low`, `high`] seconds."""

    kind: ClassVar[str] = "uniform"
    low: float = field(metadata={"ge": 0, "unit": "s"})
    high: float = field(metadata={"ge": 0, "unit": "s"})

    def __post_init__(self) -> None:
        check_fields(self)
        if self.high < self.low:
            raise FieldError("Uniform", "high", f"at least low ({self.low})", self.high)

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal with the given `median` in seconds and `sigma` of the underlying normal.

    Heavy-tailed, as real job durations and service times usually are; the mean is
    `median * exp(sigma**2 / 2)`.
    """

    kind: ClassVar[str] = "lognormal"
    median: float = field(metadata={"gt": 0, "unit": "s"})
    sigma: float = field(default=0.5, metadata={"ge": 0})

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def mean(self) -> float:
        return self.median * math.exp(0.5 * self.sigma**2)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.lognormal(math.log(self.median), self.sigma, size)

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median), self.sigma)


@dataclass(frozen=True, slots=True)
class Empirical:
    """Resamples measured values: each draw picks one of `samples` (seconds) with equal chance.

    Use it to replay service times or job durations measured in production, tails and all. In
    a config, give the values inline (`samples: [0.004, 0.005, 0.031]`) or name a file of them
    (`file`, with `column` for a CSV with a header, and `unit: ms` for values in milliseconds);
    the loader reads the file into `samples`, so a run's saved config carries the values it
    used and replays without the file.
    """

    kind: ClassVar[str] = "empirical"
    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples:
            raise FieldError("Empirical", "samples", "a non-empty list of seconds", list(self.samples))
        for index, value in enumerate(self.samples):
            if not math.isfinite(value) or value < 0:
                raise FieldError("Empirical", f"samples[{index}]", "a finite number >= 0", value)

    @property
    def mean(self) -> float:
        return math.fsum(self.samples) / len(self.samples)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        values = np.asarray(self.samples, dtype=float)
        return values[rng.integers(0, len(values), size)]

    def sample(self, rng: random.Random) -> float:
        return self.samples[rng.randrange(len(self.samples))]


Distribution = Constant | Exponential | Uniform | LogNormal | Empirical

DISTRIBUTIONS: dict[str, type] = {
    cls.kind: cls for cls in (Constant, Exponential, Uniform, LogNormal, Empirical)
}
"""Distribution classes by their config `kind`."""


class Sampler:
    """Draws values of one distribution from one generator; call it for the next value.

    `next` is the same as calling the sampler, but it is a built-in callable with no Python
    frame: a constant repeats its value, any other distribution walks through blocks of
    `_BLOCK` draws and draws the next block when the last one runs out. The simulator's hot
    paths call `next` several times per request.
    """

    __slots__ = ("_distribution", "_rng", "next")

    def __init__(self, distribution: Distribution, rng: np.random.Generator) -> None:
        self._distribution = distribution
        self._rng = rng
        if isinstance(distribution, Constant):
            self.next: Callable[[], float] = itertools.repeat(distribution.value).__next__
        else:
            self.next = itertools.chain.from_iterable(iter(self._block, None)).__next__

    @property
    def distribution(self) -> Distribution:
        return self._distribution

    @property
    def constant(self) -> float | None:
        """The value every draw returns, or None if draws vary."""
        return self._distribution.value if isinstance(self._distribution, Constant) else None

    def __call__(self) -> float:
        return self.next()

    def _block(self) -> list[float]:
        return self._distribution.draw(self._rng, _BLOCK).tolist()


# ----------------------------------------------------------------------------- sample files

SAMPLE_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
"""Seconds per unit of the values in a sample file."""


_BAD_LINES_SHOWN = 5
"""Invalid lines of a sample file named in its error; the rest are counted."""


class SampleFileError(ValueError):
    """A sample file that cannot be used; `key` names the config key to fix."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def read_samples(path: Path, column: str | None = None, unit: str = "s") -> tuple[float, ...]:
    """Read measured values from a text or CSV file and return them in seconds.

    The file contains one value per line, or is a CSV whose header names its columns; `column`
    picks one of several. Blank lines and lines starting with `#` are skipped. Every value must
    be a finite number >= 0, in `unit` (s, ms or us).

    Raises `SampleFileError` naming the config key (`file`, `column` or `unit`), the rule, the
    value and the line.
    """
    if unit not in SAMPLE_UNITS:
        raise SampleFileError("unit", f"must be one of {', '.join(SAMPLE_UNITS)}; got {unit!r}")
    scale = SAMPLE_UNITS[unit]
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [(number, row) for number, row in enumerate(csv.reader(handle), start=1)
                    if row and any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")]
    except FileNotFoundError:
        raise SampleFileError("file", f"no such file: {str(path)!r}; a relative path is read from the config "
                                      "file's folder, or from the current folder for a config given as a dict") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SampleFileError("file", f"cannot read {str(path)!r}: {exc}") from None
    if not rows:
        raise SampleFileError("file", f"{str(path)!r} is empty: no values found; give one number per line")

    header = None
    if not _is_number(rows[0][1][0]):
        header = [cell.strip() for cell in rows[0][1]]
        rows = rows[1:]
    index = _column_index(path, header, len(rows[0][1]) if rows else 1, column)

    values = []
    bad: list[str] = []
    for number, row in rows:
        cell = row[index].strip() if index < len(row) else ""
        value = float(cell) if _is_number(cell) else math.nan
        if not math.isfinite(value) or value < 0:
            bad.append(f"line {number}: {cell!r}")
            continue
        values.append(value * scale)
    if bad:
        listed = "; ".join(bad[:_BAD_LINES_SHOWN])
        more = f"; and {len(bad) - _BAD_LINES_SHOWN} more" if len(bad) > _BAD_LINES_SHOWN else ""
        raise SampleFileError(
            "file", f"{str(path)!r}: each value must be a finite number >= 0; got {listed}{more}"
        )
    if not values:
        raise SampleFileError("file", f"{str(path)!r} has a header but no values")
    return tuple(values)


def _column_index(path: Path, header: list[str] | None, width: int, column: str | None) -> int:
    if column is None:
        if width > 1:
            named = f"; columns are {', '.join(header)}" if header else ""
            raise SampleFileError("column", f"{str(path)!r} has {width} columns; name one with `column`{named}")
        return 0
    if header is None:
        raise SampleFileError("column", f"{str(path)!r} has no header line to find column {column!r} in")
    if column not in header:
        raise SampleFileError("column", f"{str(path)!r} has no column {column!r}; columns are {', '.join(header)}")
    return header.index(column)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
