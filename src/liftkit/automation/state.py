"""The controller's memory: each playbook's runtime state and its timeline of decisions.

The playbook itself is a registry object (what should happen); the state is where it has got to
(stage, status, winner, warranty) and the timeline is every decision with the numbers behind it.
Timeline rows with a ``step`` are actions: a step is *decided* before it is applied and *done*
after, in that order, and the pair (playbook, step) is unique, so a controller that crashed in
between finds the decided step on its next cycle and finishes it instead of deciding again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from liftkit.registry.tables import playbook_state, playbook_timeline

Status = Literal[
    "pending",  # not started (waiting for start_at, or for the first cycle)
    "running",  # ramping or measuring
    "paused",  # stopped by a person or a health check; traffic stays as it is
    "warranty",  # the winner shipped to all but a small holdout, being re-validated
    "promoted",  # the winner serves everyone (a temporary rollout until code cleanup)
    "rolled-back",  # control serves everyone
    "archived",  # gone from the payload
]
#: States in which nothing is ramped or measured any more.
FINISHED = frozenset({"promoted", "rolled-back", "archived"})


class State(BaseModel):
    status: Status = "pending"
    stage: int = 0
    #: Raised by every manual resume or stage change, so automatic steps can happen again.
    epoch: int = 0
    started_at: datetime | None = None
    stage_started_at: datetime | None = None
    #: Units already measured when the stage began (a stage's minimum sample counts new ones).
    stage_units_at_start: int = 0
    paused_reason: str = ""
    #: Status to return to on resume.
    paused_from: Status | None = None
    outcome: str | None = None
    winner: str | None = None
    ended_at: datetime | None = None
    code_removed: bool = False
    #: Steps of outcomes that only notify, already sent (they are not repeated).
    notified: list[str] = Field(default_factory=list)
    bandit_cycle: int = 0
    bandit_cycle_at: datetime | None = None
    #: Closed bandit periods: per period, each arm's (units, mean, variance of the mean).
    bandit_periods: list[tuple[list[float], list[float], list[float]]] = Field(default_factory=list)
    warranty_ends_at: datetime | None = None
    warranty_outcome: Literal["positive", "none", "negative"] | None = None
    last_cycle_at: datetime | None = None
    last_units: int = 0
    last_snapshot_at: datetime | None = None


class Entry(BaseModel):
    """One timeline row."""

    id: int
    playbook: str
    at: datetime
    step: str | None
    rule: str
    action: str
    status: str
    reason: str
    numbers: dict[str, Any] | None
    actor: str


def load(engine: Engine, playbook: str) -> State:
    with engine.connect() as conn:
        row = conn.execute(
            select(playbook_state.c.state).where(playbook_state.c.playbook == playbook)
        ).first()
    return State() if row is None else State.model_validate(row.state)


def _upsert(conn: Connection, playbook: str, state: State, now: datetime) -> None:
    body = state.model_dump(mode="json")
    done = conn.execute(
        update(playbook_state)
        .where(playbook_state.c.playbook == playbook)
        .values(state=body, updated_at=now)
    ).rowcount
    if not done:
        conn.execute(insert(playbook_state).values(playbook=playbook, state=body, updated_at=now))


def save(engine: Engine, playbook: str, state: State, now: datetime) -> None:
    with engine.begin() as conn:
        _upsert(conn, playbook, state, now)


def finish(
    engine: Engine, playbook: str, state: State, entry_id: int, now: datetime, *,
    status: str = "done",
) -> None:  # fmt: skip
    """Save the state and mark the step, in one transaction (so neither happens alone)."""
    with engine.begin() as conn:
        _upsert(conn, playbook, state, now)
        conn.execute(
            update(playbook_timeline)
            .where(playbook_timeline.c.id == entry_id)
            .values(status=status)
        )


def record(
    engine: Engine,
    playbook: str,
    *,
    at: datetime,
    rule: str,
    action: str,
    status: str,
    reason: str,
    actor: str,
    numbers: dict[str, Any] | None = None,
    step: str | None = None,
) -> Entry | None:
    """Append a timeline row; None if ``step`` was already recorded for this playbook."""
    values = dict(
        playbook=playbook,
        at=at,
        step=step,
        rule=rule,
        action=action,
        status=status,
        reason=reason,
        numbers=numbers,
        actor=actor,
    )
    try:
        with engine.begin() as conn:
            new_id = conn.execute(insert(playbook_timeline).values(**values)).inserted_primary_key
    except IntegrityError:
        return None
    assert new_id is not None
    return Entry(id=int(new_id[0]), **values)


def set_status(engine: Engine, entry_id: int, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(playbook_timeline)
            .where(playbook_timeline.c.id == entry_id)
            .values(status=status)
        )


def step(engine: Engine, playbook: str, name: str) -> Entry | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(playbook_timeline).where(
                playbook_timeline.c.playbook == playbook, playbook_timeline.c.step == name
            )
        ).first()
    return None if row is None else Entry.model_validate(row._asdict())


def undone(engine: Engine, playbook: str) -> list[Entry]:
    """Steps decided but not finished (a crash came between): finished first next cycle."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(playbook_timeline)
            .where(
                playbook_timeline.c.playbook == playbook,
                playbook_timeline.c.status == "decided",
            )
            .order_by(playbook_timeline.c.id)
        ).all()
    return [Entry.model_validate(r._asdict()) for r in rows]


def timeline(
    engine: Engine, playbook: str | None = None, *, limit: int = 100, before: int | None = None
) -> list[Entry]:
    """Newest first."""
    query = select(playbook_timeline).order_by(playbook_timeline.c.id.desc())
    if playbook is not None:
        query = query.where(playbook_timeline.c.playbook == playbook)
    if before is not None:
        query = query.where(playbook_timeline.c.id < before)
    with engine.connect() as conn:
        rows = conn.execute(query.limit(max(1, min(limit, 500)))).all()
    return [Entry.model_validate(r._asdict()) for r in rows]


def last(engine: Engine, playbook: str) -> Entry | None:
    found = timeline(engine, playbook, limit=1)
    return found[0] if found else None
