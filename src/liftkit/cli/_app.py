"""The ``liftkit`` command (Typer). Each command is a thin shell over a library call."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

import liftkit
from liftkit.cli import (
    analysis_cmds,
    config_cmds,
    events_cmds,
    kb_cmds,
    playbook_cmds,
    server_cmds,
)
from liftkit.cli._common import console, fail
from liftkit.cli.analysis_cmds import show
from liftkit.cli.server_cmds import run_server
from liftkit.demo import build
from liftkit.platform import Platform
from liftkit.registry.payload import compile_payload
from liftkit.sdk.conformance import main as conformance_main
from liftkit.settings import Settings

app = typer.Typer(
    name="liftkit",
    help="liftkit: feature flags, experiments and their analysis in one platform.",
    no_args_is_help=True,
    add_completion=False,
)
server_cmds.register(app)
config_cmds.register(app)
events_cmds.register(app)
analysis_cmds.register(app)
playbook_cmds.register(app)
kb_cmds.register(app)

DEMO_USERS = [
    {"id": "alice", "country": "GB", "plan": "pro", "appVersion": "3.2.0"},
    {"id": "bob", "country": "US", "plan": "free", "appVersion": "2.9.1"},
    {"id": "chen", "country": "DE", "plan": "team", "appVersion": "3.0.0"},
    {"id": "dana", "country": "US", "plan": "pro", "appVersion": "3.1.4"},
]
DEMO_MARKER = ".liftkit-demo"


@app.command()
def demo(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="where the demo data goes (recreated each run)")
    ] = Path("liftkit-demo"),
    users: Annotated[int, typer.Option(help="simulated users in the A/B test")] = 20_000,
    serve: Annotated[bool, typer.Option(help="serve the platform after seeding")] = True,
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
) -> None:
    """Create a demo organisation in a fresh data directory, simulate a test, and serve it."""
    if data_dir.exists():
        if not (data_dir / DEMO_MARKER).exists():
            fail(f"{data_dir} exists and is not a liftkit demo directory; choose --data-dir")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / DEMO_MARKER).write_text("created by `liftkit demo`; safe to delete\n")
    settings = Settings(data_dir=data_dir, port=port)
    made = build(settings, users=users)
    credentials = made.credentials
    console.print(_demo_contents(settings), highlight=False, soft_wrap=True)
    console.print(
        f"Stored {made.exposures} exposures and {made.events} events of simulated traffic in "
        f"{settings.data_dir / 'events.duckdb'}. The running pricing test's analysis:"
    )
    show(made.snapshot)
    console.print(
        f"\n[bold]Dashboard[/bold]: {settings.base_url}/"
        f"\n[bold]Admin login[/bold]: {credentials.admin_email} / {credentials.admin_password}"
        f"\n[bold]Admin API key[/bold]: {credentials.admin_key}"
        f"\n[bold]SDK client key[/bold] (production): {credentials.sdk_key}"
        f"\n[bold]Ingest key[/bold] (POST /api/v1/events): {credentials.ingest_key}"
        f"\nPayload: {settings.base_url}/api/features/{credentials.sdk_key}"
        f"\nAPI docs: {settings.base_url}/docs   metrics: {settings.base_url}/metrics",
        highlight=False,
    )
    if serve:
        platform = Platform(settings)
        run_server(settings, platform)
        platform.close()


DEMO_FLAGS = ("dark-mode", "new-search", "beta-dashboard", "min-app-version-banner", "pricing-page")


def _demo_contents(settings: Settings) -> str:
    """What the demo organisation holds, and what a few users get from its production payload
    (evaluated locally by the SDK, as an app would)."""
    platform = Platform(settings)
    try:
        registry = platform.registry
        experiments = registry.all("experiments")
        running = sum(1 for e in experiments if getattr(e, "status", "") == "running")
        lines = [
            f"Demo organisation: {len(registry.all('features'))} features, "
            f"{len(experiments)} experiments ({running} running), "
            f"{len(registry.all('playbooks'))} playbooks, {len(registry.all('briefs'))} briefs.",
            "Production flags for a few users (SDK, local evaluation):",
        ]
        now = platform.clock()
        payload = compile_payload(registry.snapshot(), environment="production", now=now).payload
        client = liftkit.Client(payload=payload, streaming=False)
        try:
            for user in DEMO_USERS:
                evaluate = client.for_user(user).evaluate
                values = ", ".join(f"{key}={evaluate(key).value!r}" for key in DEMO_FLAGS)
                lines.append(f"  {user['id']}: {values}")
        finally:
            client.close()
        return "\n".join(lines)
    finally:
        platform.close()


@app.command()
def conformance(
    cases: Annotated[Path, typer.Argument(help="a GrowthBook SDK cases.json file")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show each failure")] = False,
) -> None:
    """Check the SDK engine against GrowthBook SDK specification vectors."""
    raise typer.Exit(conformance_main([str(cases), *(["-v"] if verbose else [])]))


@app.command()
def version() -> None:
    """Print liftkit's version."""
    console.print(liftkit.__version__)
