"""``liftkit controller`` and ``liftkit playbooks …``: run the controller, see and steer playbooks.

Playbook definitions are applied like any registry object (``liftkit apply -f``); these commands
are about their course: the state, the timeline, and manual overrides.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from liftkit.automation import Controller, OverrideError
from liftkit.automation import state as playbook_state
from liftkit.cli._common import ConfigFile, DatabaseUrl, DataDir, console, fail, open_platform
from liftkit.registry.errors import NotFound
from liftkit.registry.hygiene import find_refs
from liftkit.registry.playbooks import Playbook

Key = Annotated[str, typer.Argument(help="the playbook's key")]
Reason = Annotated[str, typer.Option("--reason", help="why (goes in the timeline and audit log)")]
Actor = Annotated[str, typer.Option("--as", help="who is acting (audit log actor)", envvar="USER")]


def register(app: typer.Typer) -> None:
    app.command("controller")(controller)
    playbooks = typer.Typer(help="See and steer playbooks.", no_args_is_help=True)
    playbooks.command("list")(list_playbooks)
    playbooks.command("status")(status)
    playbooks.command("timeline")(timeline)
    playbooks.command("run")(run)
    for name in ("pause", "resume", "kill"):
        playbooks.command(name)(_override_command(name))
    playbooks.command("stage")(stage)
    playbooks.command("code-removed")(code_removed)
    app.add_typer(playbooks, name="playbooks")


def controller(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    once: Annotated[bool, typer.Option(help="run one cycle and exit")] = False,
) -> None:
    """Run the playbook controller on its own (``liftkit serve`` also runs it by default).

    Several may run: one holds the leader lock and acts, the others wait to take over.
    """
    platform = open_platform(data_dir, database_url, config)
    ctl = Controller(platform)
    try:
        if once:
            decisions = ctl.run_once()
            if decisions is None:
                fail("another controller holds the leader lock; nothing done")
            for key, decision in decisions.items():
                console.print(f"{key}: [bold]{decision.action}[/bold] — {decision.reason}")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        console.print(f"controller running every {ctl.interval:g} s; Ctrl-C stops it")
        ctl.start()
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        ctl.stop()
    finally:
        ctl.notifier.close()
        ctl.lock.release()
        platform.close()


def _playbook(platform: Any, key: str) -> Playbook:
    try:
        found = platform.registry.get("playbooks", key)
    except NotFound as exc:
        fail(str(exc))
    assert isinstance(found, Playbook)
    return found


def list_playbooks(
    data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None
) -> None:
    """Every playbook with its status and stage."""
    platform = open_platform(data_dir, database_url, config)
    table = Table("playbook", "type", "experiment", "status", "stage", "latest decision")
    for pb in platform.registry.all("playbooks"):
        st = playbook_state.load(platform.engine, pb.key)
        latest = playbook_state.last(platform.engine, pb.key)
        table.add_row(
            pb.key + (" (dry run)" if pb.dry_run else ""),
            pb.type,
            pb.experiment_key,
            st.status,
            f"{st.stage + 1}/{len(pb.stages)} ({pb.stages[st.stage].coverage:.0%})",
            latest.reason if latest else "",
        )
    console.print(table)
    platform.close()


def status(
    key: Key,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """A playbook's state."""
    platform = open_platform(data_dir, database_url, config)
    pb = _playbook(platform, key)
    st = playbook_state.load(platform.engine, key)
    if as_json:
        print(json.dumps({"playbook": key, "state": st.model_dump(mode="json")}, indent=2))
    else:
        console.print(f"[bold]{key}[/bold] ({pb.type}, experiment {pb.experiment_key})")
        for name, value in st.model_dump(exclude={"bandit_periods"}).items():
            if value not in (None, "", 0, False, []):
                console.print(f"  {name}: {value}")
    platform.close()


def timeline(
    key: Key,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    limit: Annotated[int, typer.Option(help="how many entries")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON, with the numbers")] = False,
) -> None:
    """Every decision, newest first, with the numbers behind it (``--json``)."""
    platform = open_platform(data_dir, database_url, config)
    _playbook(platform, key)
    entries = playbook_state.timeline(platform.engine, key, limit=limit)
    if as_json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
    else:
        table = Table("at", "rule", "action", "status", "reason", "by")
        for e in entries:
            table.add_row(
                e.at.strftime("%Y-%m-%d %H:%M:%S"), e.rule, e.action, e.status, e.reason, e.actor
            )
        console.print(table)
    platform.close()


def run(
    key: Key, data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None
) -> None:
    """Run one controller cycle for this playbook now and print the decision."""
    platform = open_platform(data_dir, database_url, config)
    _playbook(platform, key)
    ctl = Controller(platform)
    try:
        decision = ctl.step(key)
    finally:
        ctl.notifier.close()
    console.print(f"{key}: [bold]{decision.action}[/bold] — {decision.reason}")
    platform.close()


def _override(
    key: str, command: str, actor: str, reason: str, data_dir: Path | None,
    database_url: str | None, config: Path | None, stage: int | None = None,
) -> None:  # fmt: skip
    platform = open_platform(data_dir, database_url, config)
    _playbook(platform, key)
    ctl = Controller(platform)
    try:
        after = ctl.override(key, command, f"cli:{actor}", stage=stage, reason=reason)
    except OverrideError as exc:
        fail(str(exc))
    finally:
        ctl.notifier.close()
    console.print(f"{key}: {command} done; status {after.status}, stage {after.stage + 1}")
    platform.close()


def _override_command(command: str) -> Any:
    helps = {
        "pause": "Pause a playbook: no more ramping or automatic actions; traffic stays.",
        "resume": "Resume a paused playbook.",
        "kill": "Kill switch: roll back now (control for everyone) and stop the playbook.",
    }

    def command_fn(
        key: Key,
        reason: Reason = "",
        actor: Actor = "cli",
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        config: ConfigFile = None,
    ) -> None:
        _override(key, command, actor, reason, data_dir, database_url, config)

    command_fn.__doc__ = helps[command]
    command_fn.__name__ = command
    return command_fn


def stage(
    key: Key,
    number: Annotated[int, typer.Argument(help="the stage to force, counting from 1")],
    reason: Reason = "",
    actor: Actor = "cli",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Force a stage (its coverage is applied now; its minimum duration starts again)."""
    _override(key, "stage", actor, reason, data_dir, database_url, config, stage=number - 1)


def code_removed(
    key: Key,
    refs: Annotated[
        Path | None, typer.Option("--refs", help="scan this source tree: refuse if still used")
    ] = None,
    reason: Reason = "",
    actor: Actor = "cli",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Confirm the flag is gone from code, so the playbook may archive it."""
    if refs is not None:
        platform = open_platform(data_dir, database_url, config)
        pb = _playbook(platform, key)
        keys = [pb.feature] if pb.feature else []
        keys += [
            f.key
            for f in platform.registry.all("features")
            if pb.experiment_key in f.experiments() and f.key not in keys
        ]
        platform.close()
        report = find_refs(refs, keys)
        if report.hits:
            where = ", ".join(f"{h.path}:{h.line}" for h in report.hits[:5])
            fail(f"{' / '.join(keys)} still appears in the code at {where}")
    _override(key, "code-removed", actor, reason, data_dir, database_url, config)
