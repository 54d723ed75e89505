"""SQLAlchemy Core tables: the one schema, for SQLite and PostgreSQL alike.

Registry objects are stored as validated JSON bodies (the pydantic models are their only
declaration) plus a few indexed columns for listing and filtering. Migrations in
``liftkit/registry/migrations`` must produce exactly this schema (a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSVECTOR


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite returns naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _at(name: str, nullable: bool = False) -> Column[object]:
    return Column(name, UTCDateTime(), nullable=nullable)


#: The live version of every object (``version`` 0 and ``body`` NULL: only drafts exist yet).
objects = Table(
    "objects",
    metadata,
    Column("collection", String(40), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("project", String(200), nullable=True),
    Column("name", String(400), nullable=False, default=""),
    Column("owner", String(200), nullable=False, default=""),
    #: Tags as ``|a|b|``, so one portable LIKE finds a tag on every database.
    Column("tags", Text, nullable=False, default=""),
    Column("status", String(40), nullable=True),
    Column("version", Integer, nullable=False, default=0),
    Column("body", JSON, nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    _at("created_at"),
    _at("updated_at"),
    Column("created_by", String(200), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Index(None, "collection", "project"),
)

#: Every version of every object: drafts, reviews, what was published and when.
revisions = Table(
    "revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("collection", String(40), nullable=False),
    Column("key", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    #: The live version this draft was made from; publishing fails if live has moved on.
    Column("base_version", Integer, nullable=False),
    Column("body", JSON, nullable=True),
    Column("status", String(20), nullable=False),
    Column("author", String(200), nullable=False),
    Column("reviewer", String(200), nullable=True),
    Column("message", Text, nullable=False, default=""),
    _at("created_at"),
    _at("updated_at"),
    _at("published_at", nullable=True),
    UniqueConstraint("collection", "key", "version"),
)

#: Analysis results (``liftkit.analysis.Snapshot`` bodies): appended, never overwritten.
snapshots = Table(
    "snapshots",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("experiment", String(200), nullable=False),
    Column("phase", Integer, nullable=False),
    _at("created_at"),
    Column("created_by", String(200), nullable=False),
    Column("body", JSON, nullable=False),
    Index(None, "experiment", "id"),
)

#: The controller's runtime state per playbook (the definition is the registry object).
playbook_state = Table(
    "playbook_state",
    metadata,
    Column("playbook", String(200), primary_key=True),
    Column("state", JSON, nullable=False),
    _at("updated_at"),
)

#: Every decision the controller took (or in dry-run would have taken), with its numbers.
#: ``step`` is the idempotency key of an action: a crash between deciding and acting finds the
#: decided step again instead of deciding a second one.
playbook_timeline = Table(
    "playbook_timeline",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("playbook", String(200), nullable=False),
    _at("at"),
    Column("step", String(200), nullable=True),
    Column("rule", String(60), nullable=False),
    Column("action", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("numbers", JSON, nullable=True),
    Column("actor", String(200), nullable=False),
    UniqueConstraint("playbook", "step"),
    Index(None, "playbook", "id"),
)

#: Time-limited leases (which process is the controller, on SQLite).
leases = Table(
    "leases",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("holder", String(200), nullable=False),
    _at("expires_at"),
)

#: Webhook notifications: an outbox retried with backoff, so restarts lose none.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    #: Unique per notification and URL; receivers can use it to drop repeats.
    Column("event_id", String(200), nullable=False),
    Column("playbook", String(200), nullable=False),
    Column("url", Text, nullable=False),
    #: As configured (``${ENV}`` unexpanded), so the database holds no more than the registry.
    Column("secret", Text, nullable=False, default=""),
    Column("format", String(20), nullable=False),
    Column("body", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    _at("next_at"),
    Column("last_error", Text, nullable=False, default=""),
    _at("created_at"),
    _at("sent_at", nullable=True),
    UniqueConstraint("event_id", "url"),
    Index(None, "status", "next_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    _at("at"),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("collection", String(40), nullable=True),
    Column("key", String(200), nullable=True),
    Column("project", String(200), nullable=True),
    Column("version", Integer, nullable=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("message", Text, nullable=False, default=""),
    Index(None, "collection", "key"),
    Index(None, "at"),
)

#: Small counters; ``epoch`` rises with every publish so other processes notice changes.
#: The knowledge base's search index: derived from briefs, experiments and snapshots, rebuilt when
#: they change (``liftkit.knowledge.search``). PostgreSQL searches ``document`` (tsvector, GIN);
#: SQLite searches an FTS5 table the search module keeps beside this one.
kb_documents = Table(
    "kb_documents",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("team", String(200), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("outcome", String(20), nullable=True),
    Column("tags", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    _at("date", nullable=True),
    Column("document", TSVECTOR().with_variant(Text(), "sqlite"), nullable=True),
    Index("ix_kb_documents_document", "document", postgresql_using="gin"),
)

meta = Table(
    "meta",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("password_hash", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    _at("created_at"),
)

#: A user's role in a project; project ``*`` is every project.
memberships = Table(
    "memberships",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("project", String(200), primary_key=True),
    Column("role", String(20), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    _at("created_at"),
    _at("expires_at"),
)

#: Secret (role-carrying), SDK (read one payload) and ingest (write events) keys, hashed.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type", String(10), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    #: The first characters of the key, to tell keys apart in lists and logs.
    Column("prefix", String(20), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("role", String(20), nullable=True),
    Column("project", String(200), nullable=True),
    Column("environment", String(200), nullable=True),
    #: SDK connection options (encryption and its key, remote evaluation, ...).
    Column("config", JSON, nullable=False, default=dict),
    Column("created_by", String(200), nullable=False),
    _at("created_at"),
    _at("revoked_at", nullable=True),
)
