"""``build``: the whole demo in an empty data directory (what ``liftkit demo`` runs)."""

from __future__ import annotations

from dataclasses import dataclass

from liftkit.analysis import Snapshot
from liftkit.demo._story import tell
from liftkit.demo._world import DemoClock, DemoCredentials, seed
from liftkit.platform import Platform
from liftkit.registry.store import utc_now
from liftkit.settings import Settings


@dataclass(frozen=True)
class Demo:
    """What ``build`` made: how to get in, the simulated traffic stored, the pricing analysis."""

    credentials: DemoCredentials
    #: Exposures and events stored for all simulated tests.
    exposures: int
    events: int
    #: The running pricing test's latest snapshot.
    snapshot: Snapshot


def build(settings: Settings, *, users: int = 20_000) -> Demo:
    """Seed an empty data directory with the whole demo: objects, traffic, analyses, playbooks.

    The story runs on its own clock, from four months ago up to now; ``users`` is how many
    simulated users the pricing test exposes (the other tests scale with it).
    """
    clock = DemoClock.ending(utc_now())
    platform = Platform(settings, clock=clock)
    try:
        credentials = seed(platform)
        story = tell(platform, clock, users)
        snapshot = story.snapshots["pricing-2026"]
        return Demo(credentials, story.exposures, story.events, snapshot)
    finally:
        platform.close()
