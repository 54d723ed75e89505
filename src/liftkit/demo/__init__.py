"""Demo data: a realistic organisation with four months of history, made through liftkit itself.

``liftkit demo`` builds it in a fresh data directory and serves the dashboard. ``build`` seeds the
standing organisation (``_world``: projects, attributes, groups, metrics, long-lived flags, people)
and then tells its story (``_story``) on a clock that runs from four months ago to now: tests
created, launched through the real SDK's assignment, analysed, stopped and concluded; rollouts
ramped and one rolled back by the playbook controller; briefs, ideas and a calendar clash in the
knowledge base. Everything is made the way a user would make it, with the actor who would have
made it, so the audit log, drafts, flag hygiene and timelines look like real use.
"""

from liftkit.demo._build import Demo, build
from liftkit.demo._traffic import Arm, SimulatedTraffic, Visitors
from liftkit.demo._world import (
    ACTOR,
    ADMIN_EMAIL,
    PEOPLE,
    DemoClock,
    DemoCredentials,
    objects,
    seed,
)

__all__ = [
    "ACTOR",
    "ADMIN_EMAIL",
    "PEOPLE",
    "Arm",
    "Demo",
    "DemoClock",
    "DemoCredentials",
    "SimulatedTraffic",
    "Visitors",
    "build",
    "objects",
    "seed",
]
