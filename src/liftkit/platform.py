"""The platform: the one core object built from ``Settings`` and passed to routes and commands.

It owns the registry database and everything read from it. Nothing in liftkit reaches for a
module-level global; tests build as many platforms as they like, side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from liftkit.registry import Accounts, Registry, database
from liftkit.registry.store import utc_now
from liftkit.settings import Settings

SYSTEM_ACTOR = "system"
DEFAULT_ENVIRONMENTS = (
    ("development", "Development", False),
    ("staging", "Staging", False),
    ("production", "Production", False),
)


class Platform:
    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = database.create(settings.registry_url)
        self.registry = Registry(self.engine, clock=clock)
        self.accounts = Accounts(self.engine, clock, timedelta(days=settings.session_days))

    def bootstrap(self) -> str | None:
        """Give an empty registry a project and environments, and create the first admin key.

        Returns the admin key's secret when it was created (to be printed once), else None.
        """
        registry = self.registry
        if registry.find("projects", "default") is None:
            registry.save("projects", {"key": "default", "name": "Default"}, SYSTEM_ACTOR)
        if not registry.page("environments", limit=1).items:
            for key, name, approval in DEFAULT_ENVIRONMENTS:
                registry.save(
                    "environments",
                    {"key": key, "name": name, "requires_approval": approval},
                    SYSTEM_ACTOR,
                )
        if self.accounts.keys("secret", include_revoked=True) or self.accounts.users():
            return None
        secret, admin_key = self.accounts.create_key(
            "secret", created_by=SYSTEM_ACTOR, name="first admin key", role="admin"
        )
        registry.record(SYSTEM_ACTOR, "key.create", "first admin key", key_id=admin_key.id)
        return secret

    def close(self) -> None:
        self.engine.dispose()
