"""The ``liftkit`` command."""

from __future__ import annotations


def main() -> None:
    """Entry point; the CLI needs the ``server`` extra (Typer, Rich)."""
    try:
        from liftkit.cli._app import app
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit(
            f"liftkit: the command line needs the 'server' extra ({exc.name} is missing).\n"
            "Install it with: pip install 'liftkit[server]'"
        ) from None
    app()
