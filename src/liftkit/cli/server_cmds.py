"""``liftkit serve``, ``liftkit keys ...`` and ``liftkit users ...``."""

from __future__ import annotations

import gc
from typing import Annotated

import typer
from rich.table import Table

from liftkit.cli._common import (
    ConfigFile,
    DatabaseUrl,
    DataDir,
    announce_first_key,
    console,
    fail,
    load_settings,
    open_platform,
)
from liftkit.platform import Platform
from liftkit.registry.accounts import ROLES, KeyType, Role
from liftkit.registry.errors import RegistryError
from liftkit.settings import Settings

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Manage dashboard users.", no_args_is_help=True)
CLI_ACTOR = "cli"


def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    host: Annotated[
        str | None, typer.Option(help="address to listen on [env LIFTKIT_HOST]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port [env LIFTKIT_PORT; default 8000]")] = None,
) -> None:
    """Run the liftkit server: REST API, SDK payloads and streaming, OFREP, metrics."""
    settings = load_settings(data_dir, database_url, config, host=host, port=port)
    run_server(settings)


def run_server(settings: Settings, platform: Platform | None = None) -> None:
    import uvicorn

    from liftkit.app import create_app

    if platform is None:
        try:
            platform = Platform(settings)
        except Exception as exc:
            fail(f"cannot open the registry at {settings.registry_url}: {exc}")
        announce_first_key(platform.bootstrap())
    console.print(
        f"liftkit serving at [bold]{settings.base_url}[/bold] (dashboard at /, Ctrl-C to stop)"
    )
    if not platform.accounts.users():
        console.print(
            "No dashboard users yet: create one with "
            "`liftkit users create EMAIL --role admin` (same --data-dir/--database-url)."
        )
    app = create_app(platform)
    # The start-up heap is large and long-lived; freezing it keeps full garbage collections
    # (~60 ms each) out of request latency (measured in benchmarks/README.md: p99 28 → 2 ms).
    gc.collect()
    gc.freeze()
    # uvicorn's access log prints request paths, and SDK client keys are in paths: it stays off.
    # Open SSE streams would otherwise hold a shutdown forever.
    uvicorn.run(
        app,
        timeout_graceful_shutdown=5,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
    )


@keys_app.command("create")
def keys_create(
    role: Annotated[
        str | None, typer.Option(help=f"secret key with this role: {', '.join(ROLES)}")
    ] = None,
    sdk: Annotated[
        str | None, typer.Option("--sdk", metavar="ENV", help="SDK client key for environment ENV")
    ] = None,
    ingest: Annotated[bool, typer.Option("--ingest", help="an ingest key (writes events)")] = False,
    project: Annotated[str | None, typer.Option(help="limit the key to one project")] = None,
    name: Annotated[str, typer.Option(help="a label to recognise the key by")] = "",
    encrypt: Annotated[bool, typer.Option(help="encrypt this SDK connection's payload")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Print a new key. It is stored hashed and cannot be shown again."""
    if sum([role is not None, sdk is not None, ingest]) != 1:
        fail("give exactly one of --role ROLE, --sdk ENV or --ingest")
    if role is not None and role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    platform = open_platform(data_dir, database_url, config)
    try:
        if sdk is not None and platform.registry.find("environments", sdk) is None:
            known = ", ".join(e.key for e in platform.registry.all("environments"))
            fail(f"no environment {sdk!r} (known: {known})")
        kind: KeyType = "secret" if role else "sdk" if sdk else "ingest"
        secret, key = platform.accounts.create_key(
            kind,
            created_by=CLI_ACTOR,
            name=name,
            role=role,
            project=project or ("default" if sdk else None),
            environment=sdk,
            encrypt=encrypt,
        )
        platform.registry.record(CLI_ACTOR, "key.create", name, key_id=key.id, type=kind)
    except RegistryError as exc:
        fail(str(exc))
    finally:
        platform.close()
    console.print(secret, highlight=False, soft_wrap=True)
    if key.config.get("encryption_key"):
        console.print(f"decryption key: {key.config['encryption_key']}", highlight=False)


@keys_app.command("list")
def keys_list(
    data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None
) -> None:
    """List live keys (never their secrets)."""
    platform = open_platform(data_dir, database_url, config)
    table = Table("id", "type", "prefix", "name", "role", "project", "environment", "created")
    for key in platform.accounts.keys():  # noqa: SIM118 (a method, not a dict)
        table.add_row(
            *(str(key.id), key.type, key.prefix + "…", key.name, key.role or ""),
            *(key.project or "", key.environment or "", f"{key.created_at:%Y-%m-%d %H:%M}"),
        )
    platform.close()
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="the key's id (see `liftkit keys list`)")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Revoke a key; it stops working at once on every server."""
    platform = open_platform(data_dir, database_url, config)
    try:
        key = platform.accounts.revoke_key(key_id)
        platform.registry.record(CLI_ACTOR, "key.revoke", key.name, key_id=key.id)
    except RegistryError as exc:
        fail(str(exc))
    finally:
        platform.close()
    console.print(f"revoked key {key.id} ({key.prefix}…)")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument()],
    role: Annotated[
        str, typer.Option(help=f"role in every project: {', '.join(ROLES)}")
    ] = "viewer",
    name: Annotated[str, typer.Option()] = "",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create a dashboard user (the password is asked for, and stored argon2-hashed)."""
    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    platform = open_platform(data_dir, database_url, config)
    try:
        roles: dict[str, Role] = {"*": role}
        user = platform.accounts.create_user(email, password, name=name, roles=roles)
        platform.registry.record(CLI_ACTOR, "user.create", email, user_id=user.id, role=role)
    except RegistryError as exc:
        fail(str(exc))
    finally:
        platform.close()
    console.print(f"created user {user.email} ({role})")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(keys_app, name="keys")
    app.add_typer(users_app, name="users")
