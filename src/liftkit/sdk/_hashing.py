"""Deterministic bucketing: the arithmetic that makes every SDK agree on a user's variation.

These functions follow the GrowthBook SDK specification exactly, since any GrowthBook SDK must
reach the same decision from the same payload.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF

BucketRange = tuple[float, float]


def fnv1a32(text: str, state: int = _FNV_OFFSET) -> int:
    """32-bit FNV-1a over the string's UTF-16 code units, continuing from ``state``.

    UTF-16 units because the reference SDK is JavaScript (``charCodeAt``): a character outside
    the Basic Multilingual Plane (an emoji) counts as its two surrogates, as it does there.

    Passing the state reached after a prefix lets callers hash ``prefix + text`` without
    re-hashing the prefix: version 2 hashes ``seed + value``, and a rule's seed never changes.
    """
    h = state
    if text.isascii():  # bytes iterate as ints: no ord() call per character
        for b in text.encode("ascii"):
            h = ((h ^ b) * _FNV_PRIME) & _MASK
    else:
        data = text.encode("utf-16-le", "surrogatepass")
        for unit in struct.unpack(f"<{len(data) // 2}H", data):
            h = ((h ^ unit) * _FNV_PRIME) & _MASK
    return h


def hash_value(seed: str, value: str, version: int) -> float | None:
    """A number in [0, 1) for (seed, value); None for an unknown hash version."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


class Hasher:
    """``hash_value`` for one fixed seed and version, with the seed's work done once."""

    __slots__ = ("_seed", "_state", "version")

    def __init__(self, seed: str, version: int) -> None:
        self._seed = seed
        self.version = version
        self._state = fnv1a32(seed)

    def __call__(self, value: str) -> float | None:
        # The hot path of every rollout and experiment. The low 32 bits of an FNV state depend
        # only on the low 32 bits before it, so for short values the mask can wait until the
        # end of each pass (Python's big-int arithmetic is cheaper than masking every byte).
        if self.version == 2:
            if value.isascii() and len(value) <= 32:
                h = self._state
                for b in value.encode("ascii"):
                    h = (h ^ b) * 0x01000193
                h &= 0xFFFFFFFF
            else:
                h = fnv1a32(value, self._state)
            h2 = 0x811C9DC5
            for b in str(h).encode("ascii"):
                h2 = (h2 ^ b) * 0x01000193
            return ((h2 & 0xFFFFFFFF) % 10000) / 10000
        if self.version == 1:
            return (fnv1a32(value + self._seed) % 1000) / 1000
        return None


def in_namespace(user_id: str, namespace: Sequence[object]) -> bool:
    """Whether the user falls in the namespace ``[name, start, end]``."""
    n = hash_value("__" + str(namespace[0]), user_id, 1)
    if n is None:
        return False
    start, end = namespace[1], namespace[2]
    return float(start) <= n < float(end)  # type: ignore[arg-type]


def equal_weights(num_variations: int) -> list[float]:
    if num_variations < 1:
        return []
    return [1.0 / num_variations] * num_variations


def bucket_ranges(
    num_variations: int, coverage: float | None = 1.0, weights: Sequence[float] | None = None
) -> list[BucketRange]:
    """Split [0, 1) into one range per variation, scaled by coverage.

    Invalid coverage is clamped to [0, 1]; weights that do not match the variations or do not sum
    to ~1 are replaced by equal weights.
    """
    cov = 1.0 if coverage is None else min(max(float(coverage), 0.0), 1.0)
    w: Sequence[float]
    if weights is None or len(weights) != num_variations:
        w = equal_weights(num_variations)
    else:
        total = sum(weights)
        w = weights if 0.99 <= total <= 1.01 else equal_weights(num_variations)
    ranges: list[BucketRange] = []
    cumulative = 0.0
    for weight in w:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + cov * weight))
    return ranges


def choose_variation(n: float, ranges: Sequence[Sequence[float]]) -> int:
    """The index of the range containing ``n``, or -1."""
    for i, r in enumerate(ranges):
        if r[0] <= n < r[1]:
            return i
    return -1


_DIGITS = re.compile(r"^\d+$")


def query_string_override(experiment_key: str, url: str, num_variations: int) -> int | None:
    """The variation forced by ``?<experiment_key>=<index>`` in the URL, if valid."""
    if not url:
        return None
    query = urlsplit(url).query
    if not query:
        return None
    values = parse_qs(query).get(experiment_key)
    if not values:
        return None
    raw = values[0]
    if not _DIGITS.match(raw):
        return None
    index = int(raw)
    return index if 0 <= index < num_variations else None
