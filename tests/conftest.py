"""Shared fixtures: a platform on SQLite and on a real PostgreSQL database.

PostgreSQL tests create their own database and drop it afterwards. They never skip: without a
server at ``LIFTKIT_TEST_POSTGRES`` (default: the local one, trust auth) they fail with a clear
message. Deselect them on a machine without PostgreSQL with ``-m "not postgres"``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from liftkit.platform import Platform
from liftkit.settings import Settings

#: The dashboard's live server and browser fixtures (tests/web_support.py).
pytest_plugins = ["web_support"]

POSTGRES_ADMIN_URL = os.environ.get(
    "LIFTKIT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin_connection():  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is needed at {POSTGRES_ADMIN_URL} (set LIFTKIT_TEST_POSTGRES, or "
            f'deselect with -m "not postgres"): {exc}'
        )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    name = "liftkit_test_" + secrets.token_hex(6)
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The registry database, on each backend liftkit supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    """A bootstrapped platform (default project, three environments) on each backend."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    instance = Platform(settings)
    instance.bootstrap()
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def admin_key(platform: Platform) -> str:
    secret, _ = platform.accounts.create_key("secret", created_by="test", role="admin")
    return secret
