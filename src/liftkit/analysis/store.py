"""Stored snapshots: appended to the platform database, read back by id or as a history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, desc, insert, select

from liftkit.analysis.snapshot import Snapshot
from liftkit.registry.tables import snapshots


def save(engine: Engine, snapshot: Snapshot) -> Snapshot:
    """Store a snapshot and return it with its id."""
    body = snapshot.model_dump(mode="json", exclude={"id"})
    with engine.begin() as conn:
        result = conn.execute(
            insert(snapshots).values(
                experiment=snapshot.experiment,
                phase=snapshot.phase,
                created_at=snapshot.created_at,
                created_by=snapshot.created_by,
                body=body,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
    return snapshot.model_copy(update={"id": int(key[0])})


def get(engine: Engine, snapshot_id: int) -> Snapshot | None:
    with engine.connect() as conn:
        row = conn.execute(select(snapshots).where(snapshots.c.id == snapshot_id)).first()
    return None if row is None else _load(row)


def latest(engine: Engine, experiment: str) -> Snapshot | None:
    found = history(engine, experiment, limit=1)
    return found[0] if found else None


def history(engine: Engine, experiment: str, *, limit: int = 50) -> list[Snapshot]:
    """The experiment's snapshots, newest first."""
    query = (
        select(snapshots)
        .where(snapshots.c.experiment == experiment)
        .order_by(desc(snapshots.c.id))
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_load(row) for row in conn.execute(query)]


def _load(row: Any) -> Snapshot:
    return Snapshot.model_validate({**row.body, "id": row.id})
