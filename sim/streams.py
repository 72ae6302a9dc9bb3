"""Random streams: one root seed, an independent stream per component and per client.

Each stream is derived from the root seed and a fixed key with numpy's `SeedSequence`, so
streams do not overlap and adding a client or a component leaves every other stream's draws
unchanged. That makes runs that differ in one setting comparable draw for draw (common random
numbers).
"""

from __future__ import annotations

import random

import numpy as np

__all__ = ["ClientSeeds", "Streams", "SERVER_STREAMS"]

SERVER_STREAMS = ("service", "latency", "duration", "outcome", "faults", "stuck", "network")
"""Names of the server model's streams."""

# Keys are part of the reproducibility contract: changing one changes every result of a seed.
_KEYS = {
    "arrivals": 1,
    "service": 2,
    "latency": 3,
    "duration": 4,
    "outcome": 5,
    "faults": 6,
    "stuck": 7,
    "network": 8,
}
_CLIENT_KEY = 100

# Constants of numpy's SeedSequence hash, which `client_seeds` reproduces (tests/test_streams.py
# compares the two). All arithmetic is modulo 2**32.
_MASK = 0xFFFF_FFFF
_POOL_WORDS = 4
_INIT_A = 0x43B0_D7E5
_MULT_A = 0x931E_8875
_INIT_B = 0x8B51_F9DD
_MULT_B = 0x58F3_8DED
_MIX_MULT_L = 0xCA01_F9DD
_MIX_MULT_R = 0x4973_F715
_XSHIFT = 16
_CLIENT_SEED_WORDS = 8
"""32-bit words in a client's seed: `SeedSequence.generate_state(4, np.uint64)`."""
_CLIENT_SEED_BYTES = 4 * _CLIENT_SEED_WORDS


class Streams:
    """Derives named numpy generators and per-client `random.Random` from one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def generator(self, name: str) -> np.random.Generator:
        """Return a new numpy generator for component `name`."""
        key = _KEYS[name]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(key,))))

    def server(self) -> dict[str, np.random.Generator]:
        """Return the server model's generators by name."""
        return {name: self.generator(name) for name in SERVER_STREAMS}

    def client(self, index: int) -> random.Random:
        """Return the `random.Random` of client number `index`.

        This is the definition of a client's stream. A run starts thousands of clients, so the
        engine takes the same seeds from `client_seeds` instead, which computes them all at once.
        """
        state = np.random.SeedSequence(self.seed, spawn_key=(_CLIENT_KEY, index)).generate_state(4, np.uint64)
        return random.Random(int.from_bytes(state.tobytes(), "little"))

    def client_seeds(self, count: int) -> ClientSeeds:
        """Return the seeds of clients 0 to `count - 1`, equal to those `client` derives."""
        return ClientSeeds(self.seed, count)


class ClientSeeds:
    """The seeds of `count` clients' `random.Random` streams, derived in one vectorised pass.

    Client `index`'s seed is `SeedSequence(seed, spawn_key=(100, index)).generate_state(4,
    np.uint64)`, as in `Streams.client`. Built one at a time, each seed took about 18 µs of
    numpy overhead. A polling client sends about 20 requests, so py-spy put seeding at a tenth
    of a 5,000-client run. The SeedSequence hash feeds the entropy words in order, and only
    the last word (the client index) differs between clients. So the pool is mixed once up to
    that word in plain Python, then the last word and the output are computed for all clients
    with numpy. Tests compare the result with numpy's SeedSequence.
    """

    __slots__ = ("_bytes", "_count")

    def __init__(self, seed: int, count: int) -> None:
        if not 0 <= count < 2**32:
            raise ValueError(f"count must be between 0 and 2**32 - 1 clients; got {count}")

        # Entropy words as SeedSequence assembles them: the seed's 32-bit words, little end
        # first, padded with zeros to the pool size because a spawn key follows, then the key.
        entropy = _uint32_words(seed)
        entropy += [0] * (_POOL_WORDS - len(entropy))
        entropy.append(_CLIENT_KEY)

        # The hash constant advances with every word hashed, whatever the word's value.
        hash_const = _INIT_A
        pool = []
        for word in entropy[:_POOL_WORDS]:
            value, hash_const = _hashmix(word, hash_const)
            pool.append(value)
        for source in range(_POOL_WORDS):
            for target in range(_POOL_WORDS):
                if source != target:
                    value, hash_const = _hashmix(pool[source], hash_const)
                    pool[target] = _mix(pool[target], value)
        for word in entropy[_POOL_WORDS:]:
            for target in range(_POOL_WORDS):
                value, hash_const = _hashmix(word, hash_const)
                pool[target] = _mix(pool[target], value)

        # The last entropy word, the client index, for every client at once. A uint64 fits every
        # product of two 32-bit words; masking keeps the low 32 bits, as uint32 overflow would.
        index = np.arange(count, dtype=np.uint64)
        final = []
        for target in range(_POOL_WORDS):
            value = ((index ^ hash_const) * ((hash_const * _MULT_A) & _MASK)) & _MASK
            hash_const = (hash_const * _MULT_A) & _MASK
            value ^= value >> _XSHIFT
            mixed = (_MIX_MULT_L * pool[target] - _MIX_MULT_R * value) & _MASK
            final.append(mixed ^ (mixed >> _XSHIFT))

        words = np.empty((count, _CLIENT_SEED_WORDS), dtype=np.uint32)
        hash_const = _INIT_B
        for position in range(_CLIENT_SEED_WORDS):
            hash_const_next = (hash_const * _MULT_B) & _MASK
            value = ((final[position % _POOL_WORDS] ^ hash_const) * hash_const_next) & _MASK
            words[:, position] = value ^ (value >> _XSHIFT)
            hash_const = hash_const_next
        # As bytes, so that a client's seed is a slice, not a numpy row (a few µs less each).
        self._bytes = words.astype("<u4").tobytes()
        self._count = count

    def __len__(self) -> int:
        return self._count

    def rng(self, index: int) -> random.Random:
        """Return a new `random.Random` for client `index`, equal to `Streams.client(index)`."""
        if not 0 <= index < self._count:
            raise IndexError(f"client index must be between 0 and {self._count - 1}; got {index}")
        start = index * _CLIENT_SEED_BYTES
        return random.Random(int.from_bytes(self._bytes[start:start + _CLIENT_SEED_BYTES], "little"))


def _uint32_words(value: int) -> list[int]:
    """Split a non-negative integer into 32-bit words, least significant first (0 gives [0])."""
    words = []
    while True:
        words.append(value & _MASK)
        value >>= 32
        if not value:
            return words


def _hashmix(value: int, hash_const: int) -> tuple[int, int]:
    """Hash one 32-bit word; return it and the next hash constant."""
    value = (value ^ hash_const) & _MASK
    hash_const = (hash_const * _MULT_A) & _MASK
    value = (value * hash_const) & _MASK
    return value ^ (value >> _XSHIFT), hash_const


def _mix(x: int, y: int) -> int:
    result = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _MASK
    return result ^ (result >> _XSHIFT)
