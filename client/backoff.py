"""Backoff schedules: how long to wait before the next try.

A `Backoff` turns a try number into a delay in seconds. The client uses one schedule for polling
a pending job and another for retrying after an error (see `client.policy`). Both use the same
vocabulary, where `b` is `initial`, `m` is `multiplier`, `C` is `maximum` (the cap) and `n`
counts from 1:

    e(n) = min(C, b * m**(n - 1))

`e(n)` is the capped exponential value. Jitter is applied after the cap, so a delay never exceeds
the cap and delays stay spread once the cap is reached. Each jitter kind's formula is written
once, in `Backoff.delay`.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field

from client.validation import FieldError, check_fields

__all__ = ["Backoff", "Jitter"]


class Jitter(str, enum.Enum):
    """How a delay is randomised around the capped exponential value `e(n)`; compares equal to its string value."""

    NONE = "none"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"
    PROPORTIONAL = "proportional"


@dataclass(frozen=True, slots=True)
class Backoff:
    """An exponential backoff schedule with a cap and jitter.

    All times are in seconds. Build one with keywords, for example
    `Backoff(initial=0.5, multiplier=2.0, maximum=20.0, jitter="full")`; `jitter` accepts a
    `Jitter` member or its string value.
    """

    initial: float = field(default=1.0, metadata={"gt": 0, "unit": "s"})
    """Capped exponential value of the first try, `e(1)`, in seconds."""

    multiplier: float = field(default=2.0, metadata={"ge": 1})
    """Growth factor between consecutive tries (1.0 gives a constant schedule)."""

    maximum: float = field(default=30.0, metadata={"gt": 0, "unit": "s"})
    """Cap in seconds: no delay is longer than this, whatever the jitter."""

    jitter: Jitter = Jitter.EQUAL
    """Jitter kind; see `Backoff.delay` for the formula of each."""

    jitter_fraction: float = field(default=0.2, metadata={"ge": 0, "le": 1})
    """Relative spread `f` of proportional jitter, in [0, 1]; other kinds ignore it."""

    def __post_init__(self) -> None:
        # A frozen dataclass cannot be assigned normally, so the string form of `jitter` is
        # converted with object.__setattr__ before the invariants below are checked.
        if isinstance(self.jitter, str):
            try:
                object.__setattr__(self, "jitter", Jitter(self.jitter))
            except ValueError:
                kinds = ", ".join(kind.value for kind in Jitter)
                raise FieldError("Backoff", "jitter", f"one of {kinds}", self.jitter) from None

        for name in ("initial", "multiplier", "maximum", "jitter_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise FieldError("Backoff", name, "a number", value)
            # Floats, so that multiplier**n overflows quickly instead of growing a huge integer.
            object.__setattr__(self, name, float(value))

        check_fields(self)
        if self.maximum < self.initial:
            raise FieldError("Backoff", "maximum", f"at least initial ({self.initial})", self.maximum)

    def capped(self, n: int) -> float:
        """Return `e(n) = min(C, b * m**(n - 1))` in seconds, for try number `n >= 1`."""
        try:
            value = self.initial * self.multiplier ** (n - 1)
        except OverflowError:
            return self.maximum
        return value if value < self.maximum else self.maximum

    def delay(self, n: int, rng: random.Random, previous: float | None = None) -> float:
        """Draw the delay in seconds before try `n + 1`, that is after the `n`-th try (n >= 1).

        With `U(x, y)` a uniform draw from `rng`:

        - none:          `e(n)`
        - full:          `U(0, e(n))`
        - equal:         `e(n)/2 + U(0, e(n)/2)`
        - decorrelated:  `min(C, U(b, 3 * previous))`, where `previous` is the delay drawn
          before this one and `b` for the first
        - proportional:  `p(n) * U(1 - f, 1 + f)` with `p(n) = min(C / (1 + f), b * m**(n-1))`,
          so the largest draw is exactly `C` and draws stay spread at the cap

        Worked example for b=1 s, m=2, C=30 s: the first delay is 1 s with no jitter, in
        [0, 1] s with full jitter and in [0.5, 1] s with equal jitter.
        """
        jitter = self.jitter
        if jitter is Jitter.EQUAL:
            half = self.capped(n) * 0.5
            return half + half * rng.random()
        if jitter is Jitter.FULL:
            return self.capped(n) * rng.random()
        if jitter is Jitter.NONE:
            return self.capped(n)
        if jitter is Jitter.DECORRELATED:
            low = self.initial
            high = 3.0 * (low if previous is None else previous)
            value = low + (high - low) * rng.random()
            return value if value < self.maximum else self.maximum

        fraction = self.jitter_fraction
        top = self.maximum / (1.0 + fraction)
        try:
            base = self.initial * self.multiplier ** (n - 1)
        except OverflowError:
            base = top
        if base > top:
            base = top
        value = base * (1.0 - fraction + 2.0 * fraction * rng.random())
        return value if value < self.maximum else self.maximum  # rounding can pass C by 1 ulp

    def delays(self, count: int, rng: random.Random) -> list[float]:
        """List the first `count` delays this schedule draws from `rng`, in seconds.

        Use it to check a config in a unit test: the list is what a client using the same
        generator state would sleep after its 1st, 2nd, ... try.
        """
        planned: list[float] = []
        previous = None
        for n in range(1, count + 1):
            previous = self.delay(n, rng, previous)
            planned.append(previous)
        return planned

