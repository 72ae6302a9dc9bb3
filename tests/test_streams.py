"""Random streams: the vectorised client seeds equal numpy's SeedSequence, seed by seed."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sim.streams import ClientSeeds, Streams

# Seeds of one to seven 32-bit words: a seed longer than the pool of four words takes
# SeedSequence's path for entropy past the pool.
SEEDS = [0, 1, 7, 2**32 - 1, 2**32, 2**40 + 3, 2**127 + 5, 2**130 + 99, 2**200 + 12345]


@pytest.mark.parametrize("seed", SEEDS)
def test_client_seeds_equal_seed_sequence(seed: int) -> None:
    streams = Streams(seed)
    seeds = streams.client_seeds(3000)

    for index in [*range(40), 255, 256, 1023, 2047, 2999]:
        expected = streams.client(index)
        assert seeds.rng(index).getstate() == expected.getstate(), f"seed {seed}, client {index}"


def test_client_seeds_give_the_streams_of_numpy() -> None:
    # Independent of `Streams.client`: the documented derivation, spelled out.
    seeds = ClientSeeds(42, 10)
    state = np.random.SeedSequence(42, spawn_key=(100, 9)).generate_state(4, np.uint64)
    expected = random.Random(int.from_bytes(state.tobytes(), "little"))

    rng = seeds.rng(9)
    assert [rng.random() for _ in range(5)] == [expected.random() for _ in range(5)]


def test_client_seeds_differ_between_clients_and_seeds() -> None:
    first = [ClientSeeds(1, 100).rng(index).random() for index in range(100)]
    other = [ClientSeeds(2, 100).rng(index).random() for index in range(100)]

    assert len(set(first)) == 100
    assert not set(first) & set(other)


def test_client_seeds_length_and_bounds() -> None:
    assert len(ClientSeeds(3, 0)) == 0
    assert len(ClientSeeds(3, 17)) == 17
    with pytest.raises(ValueError, match="count must be between 0 and 2\\*\\*32 - 1 clients; got -1"):
        ClientSeeds(3, -1)


def test_client_seeds_refuse_an_index_out_of_range() -> None:
    seeds = ClientSeeds(3, 5)
    with pytest.raises(IndexError, match="client index must be between 0 and 4; got 5"):
        seeds.rng(5)
