"""The registry: versioned objects, drafts, reviews, publishing and the audit log.

Every change is a revision. ``save`` is the one-step path (draft + publish, or draft + review
when an environment it touches requires approval); ``draft``/``request_review``/``approve``/
``publish``/``revert`` are the steps for people who want them. Publishing bumps the ``epoch``
counter (and NOTIFYs on PostgreSQL) so every server process recompiles its SDK payloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from liftkit.registry._base import RegistryObject
from liftkit.registry._rows import (
    insert_audit,
    live_body,
    live_row,
    revision_row,
    to_revision,
    validate_object,
    write_live,
)
from liftkit.registry.collections import COLLECTIONS, Collection, collection
from liftkit.registry.database import bump_epoch
from liftkit.registry.errors import (
    ApprovalRequired,
    Conflict,
    InvalidObject,
    NotFound,
    ReviewError,
)
from liftkit.registry.features import Feature
from liftkit.registry.payload import Snapshot
from liftkit.registry.revisions import (
    OPEN_STATUSES,
    AuditEntry,
    DiffEntry,
    Revision,
    diff_entries,
    experiment_environments,
    feature_environments,
)
from liftkit.registry.tables import audit_log, meta, objects, revisions
from liftkit.registry.targeting import Environment

MAX_PAGE = 500
_VERSION_RETRIES = 50


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Published:
    """What publish hooks receive: enough to decide which payloads to recompile."""

    collection: str
    key: str
    version: int
    epoch: int


@dataclass(frozen=True)
class Page:
    items: list[RegistryObject]
    total: int
    limit: int
    offset: int


class Registry:
    """All registry reads and writes. Thread-safe: each call uses its own transaction."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self.clock = clock
        self.on_publish: list[Callable[[Published], None]] = []

    # -- reading -------------------------------------------------------------------------------

    def get(self, name: str, key: str) -> RegistryObject:
        found = self.find(name, key)
        if found is None:
            raise NotFound(f"{collection(name).kind} {key!r} not found")
        return found

    def find(self, name: str, key: str) -> RegistryObject | None:
        spec = collection(name)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(objects.c.body).where(
                    objects.c.collection == spec.name,
                    objects.c.key == key,
                    objects.c.deleted.is_(False),
                    objects.c.version > 0,
                )
            ).first()
        return None if row is None else spec.model.model_validate(row.body)

    def page(
        self,
        name: str,
        *,
        project: str | None = None,
        q: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """Live objects, filtered, ordered by key."""
        spec = collection(name)
        where = [
            objects.c.collection == spec.name,
            objects.c.deleted.is_(False),
            objects.c.version > 0,
        ]
        if project is not None:
            where.append(objects.c.project == project)
        if q:
            pattern = f"%{q.lower()}%"
            where.append(
                or_(
                    func.lower(objects.c.key).like(pattern),
                    func.lower(objects.c.name).like(pattern),
                )
            )
        if tag is not None:
            where.append(objects.c.tags.like(f"%|{tag}|%"))
        if owner is not None:
            where.append(objects.c.owner == owner)
        if status is not None:
            where.append(objects.c.status == status)
        limit = max(1, min(limit, MAX_PAGE))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(objects).where(*where)).scalar()
            rows = conn.execute(
                select(objects.c.body)
                .where(*where)
                .order_by(objects.c.key)
                .limit(limit)
                .offset(max(0, offset))
            )
            items = [spec.model.model_validate(row.body) for row in rows]
        return Page(items, int(total or 0), limit, offset)

    def all(self, name: str) -> list[Any]:
        """Every live object of a collection (for compiling payloads and exports)."""
        return list(self._iter_all(name))

    def _iter_all(self, name: str) -> Iterator[Any]:
        spec = collection(name)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(objects.c.body)
                .where(
                    objects.c.collection == spec.name,
                    objects.c.deleted.is_(False),
                    objects.c.version > 0,
                )
                .order_by(objects.c.key)
            )
            for row in rows:
                yield spec.model.model_validate(row.body)

    def snapshot(self) -> Snapshot:
        """Everything payloads are compiled from, read in one go."""
        with self.engine.connect() as conn:
            latest = conn.execute(
                select(func.max(objects.c.updated_at)).where(
                    objects.c.collection.in_([c.name for c in COLLECTIONS.values() if c.in_payload])
                )
            ).scalar()
        return Snapshot(
            features=self.all("features"),
            experiments={e.key: e for e in self.all("experiments")},
            saved_groups={g.key: g for g in self.all("saved-groups")},
            attributes={a.key: a for a in self.all("attributes")},
            holdouts=self.all("holdouts"),
            date_updated=latest,
        )

    def epoch(self) -> int:
        """A counter that rises with every publish (cheap change detection across processes)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(meta.c.value).where(meta.c.name == "epoch")).scalar_one()
            )

    # -- revisions -----------------------------------------------------------------------------

    def revisions(self, name: str, key: str) -> list[Revision]:
        spec = collection(name)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(revisions)
                .where(revisions.c.collection == spec.name, revisions.c.key == key)
                .order_by(revisions.c.version)
            ).all()
        if not rows:
            raise NotFound(f"{spec.kind} {key!r} has no revisions")
        return [to_revision(row) for row in rows]

    def open_drafts(self, name: str) -> list[Revision]:
        """Every draft waiting to be published (drafted, in review or approved) in a collection,
        oldest first, including drafts of objects that were never published."""
        spec = collection(name)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(revisions)
                .where(revisions.c.collection == spec.name, revisions.c.status.in_(OPEN_STATUSES))
                .order_by(revisions.c.id)
            ).all()
        return [to_revision(row) for row in rows]

    def revision(self, name: str, key: str, version: int) -> Revision:
        with self.engine.connect() as conn:
            return to_revision(revision_row(conn, collection(name), key, version))

    def diff(self, name: str, key: str, version: int) -> list[DiffEntry]:
        """What publishing ``version`` would change in the live object."""
        spec = collection(name)
        with self.engine.connect() as conn:
            draft = revision_row(conn, spec, key, version)
            live = live_row(conn, spec, key)
        return diff_entries(live_body(live), draft.body)

    def draft(
        self, name: str, obj: RegistryObject | dict[str, Any] | None, actor: str, *,
        key: str | None = None, message: str = "",
    ) -> Revision:  # fmt: skip
        """Record a new version without publishing it. ``obj`` None drafts a deletion."""
        spec = collection(name)
        body = None if obj is None else self.validate(spec, obj).model_dump(mode="json")
        key = key or (body or {}).get("key")
        if not key:
            raise InvalidObject("key: required", [{"loc": ["key"], "msg": "required"}])
        for _attempt in range(_VERSION_RETRIES):
            try:
                version = self._insert_draft(spec, key, body, actor, message)
                break
            except IntegrityError:  # another writer took the same version number: take the next
                continue
        else:
            raise Conflict(f"{spec.kind} {key!r} is being changed by many writers; try again")
        return self.revision(spec.name, key, version)

    def _insert_draft(
        self, spec: Collection, key: str, body: dict[str, Any] | None, actor: str, message: str
    ) -> int:
        now = self.clock()
        with self._writing() as conn:
            live = live_row(conn, spec, key)
            if body is None and live_body(live) is None:
                raise NotFound(f"{spec.kind} {key!r} not found")
            latest = conn.execute(
                select(func.max(revisions.c.version)).where(
                    revisions.c.collection == spec.name, revisions.c.key == key
                )
            ).scalar()
            version = (latest or 0) + 1
            conn.execute(
                insert(revisions).values(
                    collection=spec.name, key=key, version=version,
                    base_version=live.version if live else 0, body=body, status="draft",
                    author=actor, message=message, created_at=now, updated_at=now,
                )
            )  # fmt: skip
            insert_audit(
                conn, self.clock(), actor, "draft", spec, key, version, None, None, message
            )
        return version

    def save(
        self, name: str, obj: RegistryObject | dict[str, Any] | None, actor: str, *,
        key: str | None = None, message: str = "", publish: bool = True,
    ) -> Revision:  # fmt: skip
        """Draft and, unless approval is required (then: request review), publish."""
        revision = self.draft(name, obj, actor, key=key, message=message)
        if not publish:
            return revision
        if self.needs_approval(name, revision.key, revision.version):
            return self.request_review(name, revision.key, revision.version, actor)
        return self.publish(name, revision.key, revision.version, actor)

    def delete(self, name: str, key: str, actor: str, *, message: str = "") -> Revision:
        return self.save(name, None, actor, key=key, message=message)

    def request_review(self, name: str, key: str, version: int, actor: str) -> Revision:
        return self._set_status(name, key, version, actor, "pending_review", ("draft",))

    def approve(self, name: str, key: str, version: int, actor: str) -> Revision:
        revision = self.revision(name, key, version)
        if revision.author == actor:
            raise ReviewError("a change must be approved by someone other than its author")
        return self._set_status(
            name, key, version, actor, "approved", ("draft", "pending_review"), reviewer=actor
        )

    def discard(self, name: str, key: str, version: int, actor: str) -> Revision:
        return self._set_status(
            name, key, version, actor, "discarded", ("draft", "pending_review", "approved")
        )

    def needs_approval(self, name: str, key: str, version: int) -> bool:
        """Whether publishing this version changes an environment that requires approval."""
        spec = collection(name)
        if not spec.in_payload:
            return False
        guarded = {
            e.key
            for e in self.all("environments")
            if isinstance(e, Environment) and e.requires_approval
        }
        if not guarded:
            return False
        with self.engine.connect() as conn:
            after = revision_row(conn, spec, key, version).body
            before = live_body(live_row(conn, spec, key))
        if spec.name == "features":
            touched = feature_environments(before, after)
        elif spec.name == "experiments":
            features = [f for f in self.all("features") if isinstance(f, Feature)]
            touched = experiment_environments(key, features)
        else:
            touched = guarded
        return bool(touched & guarded)

    def publish(self, name: str, key: str, version: int, actor: str) -> Revision:
        """Make ``version`` live: the object, the audit log and the epoch change together."""
        spec = collection(name)
        now = self.clock()
        # Checked before the write lock (it reads other objects); the version check below still
        # refuses to publish over a live object that moved on meanwhile.
        if self.revision(spec.name, key, version).status != "approved" and self.needs_approval(
            spec.name, key, version
        ):
            raise ApprovalRequired(
                "this change reaches an environment that requires approval; request a review "
                "and have someone other than the author approve it"
            )
        try:
            epoch, _ = self._publish(spec, key, version, actor, now)
        except IntegrityError:
            raise Conflict(f"{spec.kind} {key!r} changed concurrently; try again") from None
        published = Published(spec.name, key, version, epoch)
        for hook in list(self.on_publish):
            hook(published)
        return self.revision(spec.name, key, version)

    def _publish(
        self, spec: Collection, key: str, version: int, actor: str, now: datetime
    ) -> tuple[int, Any]:
        with self._writing() as conn:
            row = revision_row(conn, spec, key, version)
            if row.status not in ("draft", "approved"):
                raise ReviewError(f"revision {version} is {row.status}; it cannot be published")
            live = live_row(conn, spec, key, lock=True)
            live_version = live.version if live else 0
            if row.base_version != live_version:
                raise Conflict(
                    f"revision {version} was drafted from version {row.base_version}, but version "
                    f"{live_version} is live now; draft again from the live version"
                )
            before = live_body(live)
            write_live(conn, spec, key, row.body, version, actor, now, live)
            conn.execute(
                update(revisions)
                .where(revisions.c.id == row.id)
                .values(status="published", published_at=now, updated_at=now)
            )
            action = "create" if before is None else "delete" if row.body is None else "update"
            insert_audit(
                conn, self.clock(), actor, action, spec, key, version, before, row.body, row.message
            )
            return bump_epoch(conn), before

    def revert(self, name: str, key: str, to_version: int, actor: str) -> Revision:
        """Publish again what ``to_version`` had (as a new revision, so history stays linear)."""
        old = self.revision(name, key, to_version)
        if old.status != "published":
            raise ReviewError(f"revision {to_version} was never published; nothing to revert to")
        message = f"revert to version {to_version}"
        return self.save(name, old.body, actor, key=key, message=message)

    # -- audit ---------------------------------------------------------------------------------

    def audit(
        self, *, collection_name: str | None = None, key: str | None = None,
        actor: str | None = None, limit: int = 100, offset: int = 0,
    ) -> list[AuditEntry]:  # fmt: skip
        query = select(audit_log).order_by(audit_log.c.id.desc())
        if collection_name is not None:
            query = query.where(audit_log.c.collection == collection(collection_name).name)
        if key is not None:
            query = query.where(audit_log.c.key == key)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        query = query.limit(max(1, min(limit, MAX_PAGE))).offset(max(0, offset))
        with self.engine.connect() as conn:
            return [AuditEntry.model_validate(row._asdict()) for row in conn.execute(query)]

    def record(self, actor: str, action: str, message: str = "", **details: Any) -> None:
        """Audit an action that is not a revision (a login, a key created, a playbook step)."""
        with self._writing() as conn:
            conn.execute(
                insert(audit_log).values(
                    at=self.clock(),
                    actor=actor,
                    action=action,
                    message=message,
                    after=details or None,
                )
            )

    # -- internals -----------------------------------------------------------------------------

    def _writing(self) -> Any:
        """A write transaction (on SQLite it takes the write lock at BEGIN)."""
        return self.engine.execution_options(immediate=True).begin()

    validate = staticmethod(validate_object)

    def _set_status(
        self, name: str, key: str, version: int, actor: str, status: str,
        allowed: tuple[str, ...], reviewer: str | None = None,
    ) -> Revision:  # fmt: skip
        spec = collection(name)
        with self._writing() as conn:
            row = revision_row(conn, spec, key, version)
            if row.status not in allowed:
                raise ReviewError(f"revision {version} is {row.status}; it cannot become {status}")
            values: dict[str, Any] = {"status": status, "updated_at": self.clock()}
            if reviewer is not None:
                values["reviewer"] = reviewer
            conn.execute(update(revisions).where(revisions.c.id == row.id).values(**values))
            insert_audit(conn, self.clock(), actor, status, spec, key, version, None, None, "")
        return self.revision(spec.name, key, version)


__all__ = ["COLLECTIONS", "Page", "Published", "Registry"]
