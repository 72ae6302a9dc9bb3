"""Unit tests for `client.backoff.Backoff` and the checks of `client.policy.ClientPolicy`.

Each jitter formula is checked against a second `random.Random` with the same seed, which
yields the uniform draws `U(0, 1)` that the schedule consumes, in the same order.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client import Backoff, ClientPolicy, Jitter
from client.validation import FieldError

SEED = 1234
INITIAL = 0.5
MULTIPLIER = 2.0
MAXIMUM = 20.0
FRACTION = 0.2
TRIES = range(1, 16)  # reaches the cap at n = 7 for the parameters above
DRAWS_PER_TRY = 500


def make_backoff(jitter: str, **overrides: float) -> Backoff:
    params = {"initial": INITIAL, "multiplier": MULTIPLIER, "maximum": MAXIMUM, "jitter": jitter}
    params.update(overrides)
    return Backoff(**params)


def expected_capped(n: int) -> float:
    """Return `e(n) = min(C, b * m**(n - 1))` for the module's parameters."""
    return min(MAXIMUM, INITIAL * MULTIPLIER ** (n - 1))


def expected_proportional_base(n: int) -> float:
    """Return `p(n) = min(C / (1 + f), b * m**(n - 1))` for the module's parameters."""
    return min(MAXIMUM / (1 + FRACTION), INITIAL * MULTIPLIER ** (n - 1))


# ----------------------------------------------------------------------------- formulas


def test_no_jitter_formula() -> None:
    backoff = make_backoff("none")
    rng = random.Random(SEED)

    for n in TRIES:
        assert backoff.delay(n, rng) == expected_capped(n), f"n={n}"


def test_full_jitter_formula() -> None:
    backoff = make_backoff("full")
    rng, reference = random.Random(SEED), random.Random(SEED)

    for n in TRIES:
        expected = expected_capped(n) * reference.random()
        assert backoff.delay(n, rng) == pytest.approx(expected, rel=1e-12), f"n={n}"


def test_full_jitter_bounds() -> None:
    backoff = make_backoff("full")
    rng = random.Random(SEED)

    for n in TRIES:
        draws = [backoff.delay(n, rng) for _ in range(DRAWS_PER_TRY)]
        assert min(draws) >= 0.0, f"n={n}"
        assert max(draws) <= expected_capped(n), f"n={n}"


def test_equal_jitter_formula() -> None:
    backoff = make_backoff("equal")
    rng, reference = random.Random(SEED), random.Random(SEED)

    for n in TRIES:
        half = expected_capped(n) / 2
        expected = half + half * reference.random()
        assert backoff.delay(n, rng) == pytest.approx(expected, rel=1e-12), f"n={n}"


def test_equal_jitter_bounds() -> None:
    backoff = make_backoff("equal")
    rng = random.Random(SEED)

    for n in TRIES:
        draws = [backoff.delay(n, rng) for _ in range(DRAWS_PER_TRY)]
        assert min(draws) >= expected_capped(n) / 2, f"n={n}"
        assert max(draws) <= expected_capped(n), f"n={n}"


def test_decorrelated_jitter_formula() -> None:
    backoff = make_backoff("decorrelated")
    reference = random.Random(SEED)

    expected = []
    previous = INITIAL
    for _ in TRIES:
        previous = min(MAXIMUM, reference.uniform(INITIAL, 3 * previous))
        expected.append(previous)

    assert backoff.delays(len(TRIES), random.Random(SEED)) == pytest.approx(expected, rel=1e-12)


def test_decorrelated_uses_given_previous() -> None:
    backoff = make_backoff("decorrelated")
    rng, reference = random.Random(SEED), random.Random(SEED)

    for previous in (INITIAL, 1.0, 4.0, 6.0, 15.0):
        expected = min(MAXIMUM, reference.uniform(INITIAL, 3 * previous))
        assert backoff.delay(3, rng, previous) == pytest.approx(expected, rel=1e-12)


def test_decorrelated_jitter_bounds() -> None:
    backoff = make_backoff("decorrelated")
    draws = backoff.delays(5000, random.Random(SEED))

    assert min(draws) >= INITIAL
    assert max(draws) <= MAXIMUM
    assert draws[0] <= 3 * INITIAL


def test_proportional_jitter_formula() -> None:
    backoff = make_backoff("proportional", jitter_fraction=FRACTION)
    rng, reference = random.Random(SEED), random.Random(SEED)

    for n in TRIES:
        expected = expected_proportional_base(n) * reference.uniform(1 - FRACTION, 1 + FRACTION)
        assert backoff.delay(n, rng) == pytest.approx(expected, rel=1e-12), f"n={n}"


def test_proportional_jitter_bounds() -> None:
    backoff = make_backoff("proportional", jitter_fraction=FRACTION)
    rng = random.Random(SEED)

    for n in TRIES:
        base = expected_proportional_base(n)
        draws = [backoff.delay(n, rng) for _ in range(DRAWS_PER_TRY)]
        assert min(draws) >= base * (1 - FRACTION), f"n={n}"
        assert max(draws) <= base * (1 + FRACTION), f"n={n}"
        assert max(draws) <= MAXIMUM, f"n={n}"


def test_proportional_spread_at_cap() -> None:
    backoff = make_backoff("proportional", jitter_fraction=FRACTION)
    draws = [backoff.delay(40, random.Random(seed)) for seed in range(2000)]

    assert max(draws) == pytest.approx(MAXIMUM, rel=1e-3)
    assert min(draws) == pytest.approx(MAXIMUM * (1 - FRACTION) / (1 + FRACTION), rel=1e-2)


# ----------------------------------------------------------------------------- no jitter


@pytest.mark.parametrize("initial, multiplier, maximum", [(0.1, 1.5, 30.0), (0.25, 3.0, 7.0), (2.0, 1.0, 2.0)])
def test_no_jitter_exact_values(initial: float, multiplier: float, maximum: float) -> None:
    backoff = Backoff(initial=initial, multiplier=multiplier, maximum=maximum, jitter="none")
    rng = random.Random(SEED)

    for n in range(1, 60):
        expected = min(maximum, initial * multiplier ** (n - 1))
        assert backoff.delay(n, rng) == expected, f"n={n}"


def test_first_delay_is_initial() -> None:
    backoff = make_backoff("none")
    rng = random.Random(SEED)

    assert backoff.delay(1, rng) == INITIAL
    assert backoff.delay(2, rng) == INITIAL * MULTIPLIER


@pytest.mark.parametrize("n", [1100, 10**6, 10**18])
def test_no_jitter_huge_n(n: int) -> None:
    backoff = make_backoff("none")

    assert backoff.capped(n) == MAXIMUM
    assert backoff.delay(n, random.Random(SEED)) == MAXIMUM


@pytest.mark.parametrize("jitter", [kind.value for kind in Jitter])
def test_every_jitter_huge_n(jitter: str) -> None:
    backoff = make_backoff(jitter)
    delay = backoff.delay(10**18, random.Random(SEED), previous=MAXIMUM)

    assert math.isfinite(delay)
    assert 0.0 <= delay <= MAXIMUM


def test_constant_schedule_huge_n() -> None:
    backoff = Backoff(initial=3.0, multiplier=1.0, maximum=10.0, jitter="none")

    assert backoff.capped(10**18) == 3.0


# ----------------------------------------------------------------------------- cap before jitter


def test_full_jitter_capped_first() -> None:
    # e(10) = min(20, 0.5 * 2**9) = 20, so full jitter draws U(0, 20) with mean 10. Clamping
    # after jitter would instead put most draws exactly on 20.
    backoff = make_backoff("full")
    rng = random.Random(SEED)
    draws = [backoff.delay(10, rng) for _ in range(10_000)]

    assert statistics.fmean(draws) == pytest.approx(10.0, abs=0.3)
    assert sum(draw == MAXIMUM for draw in draws) < 100


def test_policy_retry_delays_example() -> None:
    policy = ClientPolicy(retry=Backoff(initial=0.1, multiplier=2.0, maximum=0.5, jitter="none"))

    assert policy.retry.delays(5, random.Random(SEED)) == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


# ----------------------------------------------------------------------------- property


@given(
    initial=st.floats(min_value=1e-3, max_value=100.0),
    multiplier=st.floats(min_value=1.0, max_value=10.0),
    headroom=st.floats(min_value=0.0, max_value=1000.0),
    jitter=st.sampled_from(list(Jitter)),
    fraction=st.floats(min_value=0.0, max_value=1.0),
    count=st.integers(min_value=1, max_value=60),
    rng=st.randoms(use_true_random=False),
)
def test_delays_within_maximum(
    initial: float,
    multiplier: float,
    headroom: float,
    jitter: Jitter,
    fraction: float,
    count: int,
    rng: random.Random,
) -> None:
    backoff = Backoff(
        initial=initial,
        multiplier=multiplier,
        maximum=initial + headroom,
        jitter=jitter,
        jitter_fraction=fraction,
    )

    for n, delay in enumerate(backoff.delays(count, rng), start=1):
        assert delay >= 0.0, f"n={n}"
        assert delay <= backoff.maximum, f"n={n}: {delay!r} > {backoff.maximum!r}"


class _FixedRandom(random.Random):
    """A generator whose `random()` always returns `value`."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_proportional_top_draw_capped() -> None:
    # random() can return 1 - 2**-53. At the cap, p(n) = C / (1 + f) and the factor rounds to
    # 1 + f, so for C = 7 and f = 0.2 the product rounds to one ulp above C.
    largest_uniform = math.nextafter(1.0, 0.0)
    backoff = Backoff(initial=1.0, multiplier=2.0, maximum=7.0, jitter="proportional", jitter_fraction=0.2)

    assert backoff.delay(50, _FixedRandom(largest_uniform)) <= 7.0


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "params, field_name",
    [
        ({"initial": 0.0}, "initial"),
        ({"initial": -1.0}, "initial"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"initial": 5.0, "maximum": 4.0}, "maximum"),
        ({"jitter": "gaussian"}, "jitter"),
        ({"jitter_fraction": 1.5}, "jitter_fraction"),
        ({"maximum": math.inf}, "maximum"),
    ],
)
def test_backoff_rejects_invalid(params: dict[str, object], field_name: str) -> None:
    with pytest.raises(FieldError) as excinfo:
        Backoff(**params)

    assert excinfo.value.field == field_name
    assert f"Backoff.{field_name}" in str(excinfo.value)


def test_unknown_jitter_lists_kinds() -> None:
    with pytest.raises(FieldError) as excinfo:
        Backoff(jitter="gaussian")

    message = str(excinfo.value)
    assert "'gaussian'" in message
    for kind in Jitter:
        assert kind.value in message


def test_jitter_string_becomes_enum() -> None:
    assert Backoff(jitter="full").jitter is Jitter.FULL


@pytest.mark.parametrize(
    "params, field_name",
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"total_timeout": 0.0}, "total_timeout"),
        ({"total_timeout": math.inf}, "total_timeout"),
        ({"total_timeout": math.nan}, "total_timeout"),
        ({"request_timeout": -1.0}, "request_timeout"),
    ],
)
def test_policy_rejects_invalid(params: dict[str, object], field_name: str) -> None:
    with pytest.raises(FieldError) as excinfo:
        ClientPolicy(**params)

    assert excinfo.value.field == field_name
    assert f"ClientPolicy.{field_name}" in str(excinfo.value)


# ----------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("jitter", [kind.value for kind in Jitter])
def test_delays_reproducible_per_seed(jitter: str) -> None:
    backoff = make_backoff(jitter)

    first = backoff.delays(30, random.Random(SEED))
    second = backoff.delays(30, random.Random(SEED))

    assert first == second


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated", "proportional"])
def test_delays_differ_across_seeds(jitter: str) -> None:
    backoff = make_backoff(jitter)

    assert backoff.delays(30, random.Random(SEED)) != backoff.delays(30, random.Random(SEED + 1))
