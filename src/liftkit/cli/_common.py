"""What every command that touches the registry shares: options and opening the platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from liftkit.platform import Platform
from liftkit.settings import Settings

console = Console()
err_console = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="data directory [env LIFTKIT_DATA_DIR; default liftkit-data]"),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="registry database URL [env LIFTKIT_DATABASE_URL]"),
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (default DATA_DIR/liftkit.toml)")
]


def load_settings(
    data_dir: Path | None = None,
    database_url: str | None = None,
    config: Path | None = None,
    **overrides: object,
) -> Settings:
    try:
        return Settings.load(
            {"data_dir": data_dir, "database_url": database_url, **overrides}, config_file=config
        )
    except ValueError as exc:
        fail(str(exc))


def open_platform(
    data_dir: Path | None = None, database_url: str | None = None, config: Path | None = None
) -> Platform:
    """The platform for a command; a clean message (not a traceback) if it cannot open."""
    settings = load_settings(data_dir, database_url, config)
    try:
        platform = Platform(settings)
    except Exception as exc:
        fail(f"cannot open the registry at {settings.registry_url}: {exc}")
    announce_first_key(platform.bootstrap())
    return platform


def announce_first_key(secret: str | None) -> None:
    """An empty data directory gets an admin key; it is printed here, once, and never again."""
    if secret is not None:  # on stderr, so `liftkit export > file` never captures it
        err_console.print(
            f"[bold]Created the first admin key[/bold] (shown once; keep it safe):\n  {secret}"
        )


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
