"""Live exposure counters: units per experiment × variation, and an SRM check on them.

Counted in memory as exposures are acknowledged, so a broken split shows minutes after launch,
long before an analysis runs. Each experiment maps unit → variation; a unit seen in a second
variation moves to ``multiple`` (it is excluded from the counts, as analysis excludes it).
Adding the same exposure twice changes nothing, so resent events need no care here.

After a restart the counters are rebuilt from the event store (``rebuild``). A new phase of an
experiment (new weights or coverage) starts its counters afresh, since the split it is checked
against changed. Memory is bounded by ``max_units`` per experiment: beyond it, new units are
not tracked (``saturated``) and the SRM check runs on the units tracked so far — an honest
sample, since which units came first does not depend on their variation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from liftkit.events.schema import naive_utc
from liftkit.stats import srm_check

#: The SRM threshold used for the live check (the same default analysis uses).
SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class Split:
    """What an experiment's counts are checked against (from the registry)."""

    weights: tuple[float, ...]
    phase_started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LiveCounts:
    experiment: str
    units: tuple[int, ...]
    multiple: int
    saturated: bool
    since: datetime | None
    weights: tuple[float, ...] | None
    srm_p_value: float | None
    srm_flagged: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "units": list(self.units),
            "total": sum(self.units),
            "multiple_exposures": self.multiple,
            "saturated": self.saturated,
            "phase_started_at": None if self.since is None else self.since.isoformat() + "Z",
            "weights": None if self.weights is None else list(self.weights),
            "srm": {
                "p_value": self.srm_p_value,
                "flagged": self.srm_flagged,
                "threshold": SRM_THRESHOLD,
            },
        }


def unit(hash_attribute: str, hash_value: str) -> str:
    """How a unit is named in the counters (and by ``EventStore.exposure_units``)."""
    return f"{hash_attribute}\x1f{hash_value}"


class _Experiment:
    __slots__ = ("counts", "multiple", "phase", "saturated", "units")

    def __init__(self, phase: datetime | None) -> None:
        self.units: dict[str, int] = {}
        self.counts: list[int] = []
        self.multiple = 0
        self.saturated = False
        self.phase = phase


class LiveCounters:
    def __init__(self, max_units: int = 1_000_000) -> None:
        self.max_units = max_units
        self._experiments: dict[str, _Experiment] = {}
        self._lock = threading.Lock()

    def observe(self, exposures: Iterable[tuple[str, str, int, datetime | None]]) -> None:
        """Count ``(experiment, unit, variation, timestamp)`` (None: no phase test)."""
        with self._lock:
            for experiment, unit, variation, at in exposures:
                state = self._experiments.get(experiment)
                if state is None:
                    state = self._experiments[experiment] = _Experiment(None)
                if at is not None and state.phase is not None and naive_utc(at) < state.phase:
                    continue  # an exposure from an earlier phase
                seen = state.units.get(unit)
                if seen is None:
                    if len(state.units) >= self.max_units:
                        state.saturated = True
                        continue
                    state.units[unit] = variation
                    if variation >= len(state.counts):
                        state.counts.extend([0] * (variation + 1 - len(state.counts)))
                    state.counts[variation] += 1
                elif seen != variation and seen >= 0:
                    state.units[unit] = -1
                    state.counts[seen] -= 1
                    state.multiple += 1

    def set_phase(self, experiment: str, phase_started_at: datetime | None) -> None:
        """Check ``experiment`` against this phase from now on: a new phase starts afresh."""
        with self._lock:
            self._set_phase(experiment, phase_started_at)

    def _set_phase(self, experiment: str, phase_started_at: datetime | None) -> _Experiment:
        state = self._experiments.get(experiment)
        if state is None or (state.phase is not None and state.phase != phase_started_at):
            state = self._experiments[experiment] = _Experiment(phase_started_at)
        state.phase = phase_started_at
        return state

    def experiments(self) -> list[str]:
        with self._lock:
            return sorted(self._experiments)

    def snapshot(self, split_of: Callable[[str], Split | None]) -> list[LiveCounts]:
        """Counts of every experiment seen, checked against ``split_of(experiment)``.

        Counters started before the registry was asked adopt its phase; an experiment whose
        phase changed since its counters began is reset first.
        """
        out = []
        for key in self.experiments():
            split = split_of(key)
            with self._lock:
                state = self._experiments[key]
                if split is not None:
                    state = self._set_phase(key, split.phase_started_at)
                counts = list(state.counts)
                multiple, saturated, since = state.multiple, state.saturated, state.phase
            out.append(_counts(key, counts, multiple, saturated, since, split))
        return out


def _counts(
    key: str,
    counts: list[int],
    multiple: int,
    saturated: bool,
    since: datetime | None,
    split: Split | None,
) -> LiveCounts:
    p_value, flagged, weights = None, False, None
    if split is not None:
        weights = split.weights
        counts = counts + [0] * (len(weights) - len(counts))
        if len(counts) == len(weights) and sum(counts) > 0:
            result = srm_check(counts, weights, threshold=SRM_THRESHOLD)
            if result.error is None:
                p_value, flagged = result.p_value, result.flagged
    return LiveCounts(key, tuple(counts), multiple, saturated, since, weights, p_value, flagged)
