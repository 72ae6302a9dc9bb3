"""Probability distributions for service times, latencies and job durations.

Each distribution is a small frozen dataclass named by its `kind` in the config:

    service_time: {kind: exponential, mean: 0.01}
    job_duration: {kind: lognormal, median: 20, sigma: 0.5}
    latency: 0.002            # a bare number is a constant

All values are in seconds. A `Sampler` draws from one distribution with its own numpy
generator, a block at a time, because one numpy call per scalar costs more than the simulation
step that uses it. `sample(rng)` draws one value from a client's own `random.Random`, for
per-client quantities such as think time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from client.validation import FieldError, check_fields

__all__ = [
    "Constant",
    "Distribution",
    "Exponential",
    "LogNormal",
    "Sampler",
    "Uniform",
    "DISTRIBUTIONS",
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


Distribution = Constant | Exponential | Uniform | LogNormal

DISTRIBUTIONS: dict[str, type] = {cls.kind: cls for cls in (Constant, Exponential, Uniform, LogNormal)}
"""Distribution classes by their config `kind`."""


class Sampler:
    """Draws values of one distribution from one generator; call it for the next value."""

    __slots__ = ("_distribution", "_rng", "_values", "_next", "_constant")

    def __init__(self, distribution: Distribution, rng: np.random.Generator) -> None:
        self._distribution = distribution
        self._rng = rng
        self._values: list[float] = []
        self._next = 0
        self._constant = distribution.value if isinstance(distribution, Constant) else None

    @property
    def distribution(self) -> Distribution:
        return self._distribution

    def __call__(self) -> float:
        if self._constant is not None:
            return self._constant
        index = self._next
        if index == len(self._values):
            self._values = self._distribution.draw(self._rng, _BLOCK).tolist()
            index = 0
        self._next = index + 1
        return self._values[index]
