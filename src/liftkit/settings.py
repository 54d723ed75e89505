"""Server settings, declared once: the fields of ``Settings`` with their help text.

That one declaration drives the defaults, the environment variables (``LIFTKIT_<NAME>``), the config
file (``liftkit.toml`` in the data directory, or ``--config FILE``), the ``liftkit serve`` flags
and the settings table in docs/server.md. Precedence: flag > environment > file > default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "LIFTKIT_"
CONFIG_FILE = "liftkit.toml"


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """One immutable settings object, built once and passed to everything that needs it."""

    data_dir: Path = _setting(Path("liftkit-data"), "directory for the embedded databases")
    database_url: str = _setting(
        "", "registry database: SQLite in the data directory unless postgresql://… is given"
    )
    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(8000, "port to listen on")
    public_url: str = _setting("", "address SDKs and browsers use (default http://host:port)")
    payload_max_age: int = _setting(30, "Cache-Control max-age (seconds) of SDK payloads")
    change_poll_seconds: float = _setting(0.25, "how often SQLite is checked for others' publishes")
    sse_keepalive_seconds: float = _setting(20.0, "seconds between keep-alive lines to SSE clients")
    secure_attribute_salt: str = _setting("", "salt for hashing secureString attributes")
    cors_origins: str = _setting("*", "origins allowed to call the SDK endpoints (comma list)")
    session_days: int = _setting(14, "how long a dashboard login lasts (days)")
    log_level: str = _setting("info", "debug, info, warning or error")
    events_url: str = _setting(
        "", "event store: events.duckdb in the data directory unless postgresql://… is given"
    )
    ingest_max_body_mb: int = _setting(16, "largest accepted event batch (MB, after gunzip)")
    ingest_max_batch: int = _setting(50_000, "most events accepted in one request")
    ingest_max_future_seconds: float = _setting(
        300.0, "clock-skew limit: events further in the future are rejected"
    )
    ingest_max_age_days: int = _setting(
        30, "older events are rejected by the API (load history with `events import`)"
    )
    ingest_rate_limit: float = _setting(0.0, "events per second per ingest key (0: no limit)")
    dedup_hours: float = _setting(
        24.0, "a resent event_id is dropped if the first copy arrived within this many hours"
    )
    events_load_seconds: float = _setting(1.0, "how often the spool is loaded into the store")
    spool_max_mb: int = _setting(1024, "unloaded events kept on disk before ingest answers 503")
    spool_max_pending_mb: int = _setting(64, "events waiting for fsync before ingest answers 503")
    live_max_units: int = _setting(1_000_000, "units tracked per experiment by live counters")
    controller: bool = _setting(True, "run the playbook controller inside the server")
    controller_interval_seconds: float = _setting(
        10.0, "seconds between controller cycles (new events wake it sooner)"
    )
    reminders_interval_seconds: float = _setting(
        3600.0, "seconds between knowledge-base reminder runs inside the server (0: off)"
    )
    smtp_url: str = _setting(
        "",
        "mail server for digests: smtp://[user:password@]host[:port] (STARTTLS when offered) or "
        "smtps://…; ${NAME} placeholders are read from the environment",
    )
    mail_from: str = _setting("liftkit@localhost", "sender address of digest mail")

    @property
    def registry_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'registry.db'}"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: Path | None = None,
    ) -> Settings:
        """Merge defaults, the config file, the environment and explicit overrides (flags)."""
        environ = os.environ if environ is None else environ
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        values: dict[str, Any] = {}
        env_values = {
            s.name: environ[ENV_PREFIX + s.name.upper()]
            for s in SETTINGS
            if ENV_PREFIX + s.name.upper() in environ
        }
        data_dir = Path(given.get("data_dir") or env_values.get("data_dir") or Settings.data_dir)
        path = config_file or data_dir / CONFIG_FILE
        if config_file is not None and not path.exists():
            raise ValueError(f"config file {path} does not exist")
        if path.exists():
            file_values = tomllib.loads(path.read_text())
            values.update(file_values.get("liftkit", file_values))
        values.update(env_values)
        values.update(given)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        known = {s.name: s for s in SETTINGS}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        converted: dict[str, Any] = {}
        for name, raw in values.items():
            kind: Any = type(known[name].default)
            try:
                converted[name] = raw if isinstance(raw, kind) else kind(raw)
            except (TypeError, ValueError):
                raise ValueError(
                    f"setting {name}: {raw!r} is not a valid {kind.__name__}"
                ) from None
        return cls(**converted)


#: The settings with their defaults and help, in declaration order (for flags and docs).
SETTINGS: tuple[Field[Any], ...] = fields(Settings)


def markdown_table() -> str:
    """The settings as the Markdown table in docs/server.md (a test keeps the two in step)."""
    rows = ["| setting | environment variable | default | meaning |", "|---|---|---|---|"]
    for setting in SETTINGS:
        default = f"`{setting.default}`" if setting.default != "" else "(empty)"
        rows.append(
            f"| `{setting.name}` | `{ENV_PREFIX}{setting.name.upper()}` | {default} "
            f"| {setting.metadata['help']} |"
        )
    return "\n".join(rows)
