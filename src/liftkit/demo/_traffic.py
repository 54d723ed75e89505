"""Simulated visitors: assigned by the real SDK, stored through the events store's bulk load.

Each simulated visitor is evaluated by ``liftkit.Client`` against the production payload as it
was at that moment of the story, so namespaces, coverage and playbook ramps decide who is in a
test exactly as they would for real users. Those in the test get an exposure; their purchases,
refunds and checkout errors follow the rates planted for their variation. The events go through
``to_lines`` and ``EventStore.load``, the path ``liftkit events import`` uses.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import liftkit
from liftkit.events import ExposureEvent, LoadResult, TrackEvent, open_store, to_lines
from liftkit.platform import Platform
from liftkit.registry.payload import compile_payload
from liftkit.sdk import EvalResult
from liftkit.settings import Settings

COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "JP")
COUNTRY_WEIGHTS = (40, 15, 12, 10, 10, 8, 5)


@dataclass(frozen=True)
class Arm:
    """What a variation does to its users: purchase and checkout-error rates, order size."""

    purchase: float
    error: float = 0.02
    #: Mean of log(order value): e^3.6 ≈ $37.
    spend: float = 3.6


class SimulatedTraffic:
    """Exposures and outcomes of simulated users seen between ``start`` and ``now``.

    ``start`` defaults to nine days before ``now`` (the pricing test's running phase).
    """

    def __init__(self, now: datetime, rng: random.Random, *, start: datetime | None = None):
        self.now = now
        self.start = start if start is not None else now - timedelta(days=9)
        self.rng = rng
        self.events: list[ExposureEvent | TrackEvent] = []

    def add(
        self,
        experiment: str,
        result: EvalResult,
        user: str,
        purchase: float | None,
        country: str = "US",
        *,
        error: bool = False,
    ) -> None:
        seen = self.start + (self.now - self.start) * self.rng.random()
        outcome = result.experiment_result
        self.events.append(
            ExposureEvent(
                type="exposure",
                event_id=f"{experiment}-{user}",
                timestamp=seen,
                experiment_key=experiment,
                variation_id=result.variation_id or 0,
                variation_key=outcome.key if outcome is not None else str(result.value),
                feature_key=result.key,
                hash_value=user,
                attributes={"id": user, "country": country},
            )
        )
        later = self._after(seen, hours=2)
        if error:
            self.events.append(self._track(f"error-{user}", later, "checkout_error", None, user))
        if purchase is not None:
            bought = self._after(seen, hours=24)
            self.events.append(self._track(f"purchase-{user}", bought, "purchase", purchase, user))
            if self.rng.random() < 0.05:
                back = min(self.now, bought + timedelta(days=self.rng.random()))
                self.events.append(self._track(f"refund-{user}", back, "refund", -purchase, user))

    def _after(self, moment: datetime, *, hours: float) -> datetime:
        return min(self.now, moment + timedelta(hours=self.rng.random() * hours))

    @staticmethod
    def _track(
        event_id: str, at: datetime, name: str, value: float | None, user: str
    ) -> TrackEvent:  # fmt: skip
        return TrackEvent(
            type="track", event_id=event_id, timestamp=at, name=name, value=value, user_id=user
        )

    def store(self, settings: Settings) -> LoadResult:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "demo-events.ndjson"
            path.write_bytes(to_lines(self.events, self.now))
            return open_store(settings).load(path)


@contextmanager
def sdk(platform: Platform) -> Iterator[liftkit.Client]:
    """An SDK client on the production payload as the registry has it at the clock's time."""
    compiled = compile_payload(
        platform.registry.snapshot(), environment="production", now=platform.clock()
    )
    client = liftkit.Client(payload=compiled.payload, streaming=False)
    try:
        yield client
    finally:
        client.close()


@dataclass
class Visitors:
    """Simulated visitors with ids ``<prefix>-<n>``, numbered on from one batch to the next."""

    prefix: str
    rng: random.Random
    seen: int = 0

    def visit(
        self,
        platform: Platform,
        traffic: SimulatedTraffic,
        feature: str,
        arms: dict[str, Arm],
        *,
        visitors: int | None = None,
        exposed: int | None = None,
    ) -> int:
        """Evaluate ``feature`` for ``visitors`` new visitors (or until ``exposed`` are in the
        experiment); add those in it to ``traffic``. Returns how many were exposed."""
        if (visitors is None) == (exposed is None):
            raise ValueError("give visitors or exposed")
        rng, count, first = self.rng, 0, self.seen
        with sdk(platform) as client:
            while (visitors is None or self.seen - first < visitors) and (
                exposed is None or count < exposed
            ):
                user = f"{self.prefix}-{self.seen}"
                self.seen += 1
                country = rng.choices(COUNTRIES, weights=COUNTRY_WEIGHTS)[0]
                evaluation = client.for_user({"id": user, "country": country}).evaluate(feature)
                outcome = evaluation.experiment_result
                if not evaluation.in_experiment or outcome is None:
                    continue
                count += 1
                arm = arms[outcome.key]
                amount = None
                if rng.random() < arm.purchase:
                    amount = round(rng.lognormvariate(arm.spend, 0.5), 2)
                error = rng.random() < arm.error
                experiment = evaluation.experiment_key or feature
                traffic.add(experiment, evaluation, user, amount, country, error=error)
        return count
