"""Row-level helpers of the registry store: reading and writing the tables inside a transaction.

Kept apart from ``store.py`` so that the store reads as the revision workflow it implements.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, insert, select, update

from liftkit.registry._base import RegistryObject
from liftkit.registry.collections import Collection
from liftkit.registry.errors import InvalidObject, NotFound
from liftkit.registry.revisions import Revision
from liftkit.registry.tables import audit_log, objects, revisions


def validate_object(spec: Collection, obj: RegistryObject | dict[str, Any]) -> RegistryObject:
    if isinstance(obj, spec.model):
        obj = obj.model_dump(mode="json")
    try:
        return spec.model.model_validate(obj)
    except ValidationError as exc:
        errors = [field_error(e["loc"], e["msg"]) for e in exc.errors()]
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"]) or spec.kind
        raise InvalidObject(f"{where}: {first['msg']}", errors) from None


def revision_row(conn: Connection, spec: Collection, key: str, version: int) -> Any:
    row = conn.execute(
        select(revisions).where(
            revisions.c.collection == spec.name,
            revisions.c.key == key,
            revisions.c.version == version,
        )
    ).first()
    if row is None:
        raise NotFound(f"{spec.kind} {key!r} has no revision {version}")
    return row


def live_row(conn: Connection, spec: Collection, key: str, *, lock: bool = False) -> Any:
    query = select(objects).where(objects.c.collection == spec.name, objects.c.key == key)
    return conn.execute(query.with_for_update() if lock else query).first()


def write_live(
    conn: Connection, spec: Collection, key: str, body: dict[str, Any] | None,
    version: int, actor: str, now: datetime, live: Any,
) -> None:  # fmt: skip
    src = body or live_body(live) or {}
    values = {
        "project": src.get("project"), "name": src.get("name", ""),
        "owner": src.get("owner", ""), "tags": "".join(f"|{t}|" for t in src.get("tags", [])),
        "status": str(src.get(spec.status_field)) if spec.status_field else None,
        "version": version, "body": body, "deleted": body is None,
        "updated_at": now, "updated_by": actor,
    }  # fmt: skip
    if live is None:
        conn.execute(
            insert(objects).values(
                collection=spec.name, key=key, created_at=now, created_by=actor, **values
            )
        )
    else:
        conn.execute(
            update(objects)
            .where(objects.c.collection == spec.name, objects.c.key == key)
            .values(**values)
        )


def insert_audit(
    conn: Connection, at: datetime, actor: str, action: str, spec: Collection, key: str,
    version: int | None, before: Any, after: Any, message: str,
) -> None:  # fmt: skip
    project = (after or before or {}).get("project") if spec.project_scoped else None
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            action=action,
            collection=spec.name,
            key=key,
            project=project,
            version=version,
            before=before,
            after=after,
            message=message,
        )
    )


def field_error(loc: tuple[Any, ...], msg: str) -> dict[str, Any]:
    """Pydantic reports whole-object checks at the object; ours say ``path: message``."""
    msg = msg.removeprefix("Value error, ")
    path, sep, rest = msg.partition(": ")
    if sep and " " not in path:
        loc = (*loc, *(int(p) if p.isdigit() else p for p in path.split(".")))
        msg = rest
    return {"loc": list(loc), "msg": msg}


def live_body(live: Any) -> dict[str, Any] | None:
    return None if live is None or live.deleted or live.version == 0 else live.body


def to_revision(row: Any) -> Revision:
    return Revision.model_validate({name: getattr(row, name) for name in Revision.model_fields})
