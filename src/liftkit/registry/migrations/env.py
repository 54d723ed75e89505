"""Alembic environment: runs on the engine liftkit passes in (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context

from liftkit.registry.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
