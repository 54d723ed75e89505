"""A small world for controller tests: a registry, an event store, a clock you can move.

``World`` builds a platform whose built-in data source is a DuckDB event store, registers a fact
table over it (``orders``: purchases; ``errors``: error events), the metrics ``purchase`` and
``error-rate`` (lower is better), an experiment ``checkout`` served by the feature ``checkout``
in production, and whatever playbook a test gives. ``traffic`` writes exposures and events for
simulated users straight into the store, with planted effects per variation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from liftkit.automation import Controller
from liftkit.events.duckdb_store import DuckDBStore
from liftkit.platform import Platform
from liftkit.settings import Settings

T0 = datetime(2026, 6, 1, tzinfo=UTC)
ACTOR = "user:test"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def registry_objects(experiment: str = "checkout", variations: int = 2) -> list[tuple[str, Any]]:
    keys = ["control", "treatment", "third", "fourth"][:variations]
    return [
        ("fact-tables", {"key": "orders", "datasource": "events",
                         "sql": "SELECT user_id, timestamp FROM events WHERE name = 'purchase'"}),
        ("fact-tables", {"key": "errors", "datasource": "events",
                         "sql": "SELECT user_id, timestamp FROM events WHERE name = 'error'"}),
        ("metrics", {"key": "purchase", "numerator": {"fact_table": "orders"}}),
        ("metrics", {"key": "error-rate", "inverse": True,
                     "numerator": {"fact_table": "errors"}}),
        ("experiments", {
            "key": experiment,
            "variations": [{"key": k, "payload": i} for i, k in enumerate(keys)],
            "metrics": {"primary": ["purchase"]},
            "analysis": {"datasource": "events", "cuped": False},
        }),
        ("features", {"key": experiment, "kind": "experiment", "value_type": "number",
                      "default_value": 0, "environments": {"production": {"enabled": True,
                      "rules": [{"type": "experiment", "experiment": experiment}]}}}),
    ]  # fmt: skip


@dataclass
class World:
    platform: Platform
    clock: Clock
    store: Path
    controller: Controller
    users: int = 0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(5))

    @classmethod
    def build(cls, tmp_path: Path, database_url: str, playbook: dict[str, Any],
              *, variations: int = 2, controller: bool = True) -> World:  # fmt: skip
        """``controller``: whether an app built on this platform runs the controller itself."""
        clock = Clock()
        settings = Settings(
            data_dir=tmp_path / "data", database_url=database_url, controller=controller
        )
        platform = Platform(settings, clock=clock)
        platform.bootstrap()
        for name, body in registry_objects(playbook.get("experiment", "checkout"), variations):
            platform.registry.save(name, body, ACTOR)
        platform.registry.save("playbooks", playbook, ACTOR)
        store = settings.data_dir / "events.duckdb"
        DuckDBStore(store)
        return cls(platform, clock, store, Controller(platform))

    def close(self) -> None:
        self.controller.notifier.close()
        self.controller.lock.release()
        self.platform.close()

    def traffic(
        self,
        users: int,
        *,
        experiment: str = "checkout",
        rates: tuple[float, ...] = (0.2, 0.2),
        errors: tuple[float, ...] = (0.05, 0.05),
        shares: tuple[float, ...] | None = None,
        hours: float = 1.0,
    ) -> None:
        """``users`` new units exposed over the last ``hours`` (ending now), with outcomes.

        ``rates``/``errors``: per variation, the chance a unit purchases / hits an error within
        the hour after exposure. ``shares``: the real split (default: even).
        """
        k = len(rates)
        arms = self.rng.choice(k, users, p=shares or [1 / k] * k)
        end = self.clock.now - timedelta(minutes=5)
        start = end - timedelta(hours=hours)
        span = (end - start).total_seconds()
        offsets = self.rng.random(users) * span
        exposures, events = [], []
        for i in range(users):
            uid = f"u{self.users + i}"
            at = start + timedelta(seconds=float(offsets[i]))
            arm = int(arms[i])
            exposures.append((f"x-{uid}-{experiment}", at, experiment, arm, uid,
                              json.dumps({"id": uid})))  # fmt: skip
            later = at + timedelta(seconds=60)
            if self.rng.random() < rates[arm]:
                events.append((f"p-{uid}", later, "purchase", uid))
            if self.rng.random() < errors[arm]:
                events.append((f"e-{uid}", later, "error", uid))
        self.users += users
        with duckdb.connect(str(self.store)) as con:
            con.execute("SET TimeZone = 'UTC'")
            con.executemany(
                "INSERT INTO exposures (event_id, timestamp, received_at, experiment_key, "
                "variation_id, hash_attribute, hash_value, attributes) "
                "VALUES (?, ?, ?, ?, ?, 'id', ?, ?)",
                [(e, t, t, x, a, u, attrs) for e, t, x, a, u, attrs in exposures],
            )
            if events:
                con.executemany(
                    "INSERT INTO events (event_id, timestamp, received_at, name, user_id, "
                    "properties) VALUES (?, ?, ?, ?, ?, '{}')",
                    [(e, t, t, n, u) for e, t, n, u in events],
                )

    def experiment(self, key: str = "checkout") -> Any:
        return self.platform.registry.get("experiments", key)
