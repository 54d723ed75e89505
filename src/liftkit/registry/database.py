"""Opening the registry database: SQLite (WAL) by default, PostgreSQL in production.

Migrations run on open, so a new release upgrades the schema the first time it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, text, update
from sqlalchemy.engine import make_url

from liftkit.registry.tables import meta

MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """``postgresql://`` URLs use psycopg 3 (the driver liftkit installs)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def create(url: str, *, migrate: bool = True) -> Engine:
    """An engine for ``url`` with the schema brought up to date."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    if migrate:
        upgrade(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock up front: two processes publishing at once then serialise instead of
    # both passing the "live version unchanged" check (SQLite has no SELECT ... FOR UPDATE).
    # Writers ask for this with ``execution_options(immediate=True)``; readers stay concurrent.
    immediate = conn.get_execution_options().get("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Apply pending migrations, then make sure the counters exist."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")
    with engine.begin() as conn:
        if conn.execute(select(meta.c.value).where(meta.c.name == "epoch")).first() is None:
            conn.execute(insert(meta).values(name="epoch", value=0))


NOTIFY_CHANNEL = "liftkit_changes"


def bump_epoch(conn: Connection) -> int:
    """Raise the change counter inside the caller's transaction; NOTIFY on PostgreSQL.

    Every server process watches this counter (or listens on PostgreSQL) and recompiles its
    SDK payloads when it moves, so a publish in one process reaches SDKs served by all of them.
    """
    conn.execute(update(meta).where(meta.c.name == "epoch").values(value=meta.c.value + 1))
    epoch = int(conn.execute(select(meta.c.value).where(meta.c.name == "epoch")).scalar_one())
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, :epoch)"),
            {"channel": NOTIFY_CHANNEL, "epoch": str(epoch)},
        )
    return epoch
