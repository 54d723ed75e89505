"""The ``liftkit`` command (Typer). Each command is a thin shell over a library call."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import liftkit
from liftkit.sdk.conformance import main as conformance_main

app = typer.Typer(
    name="liftkit",
    help="liftkit: feature flags, experiments and their analysis in one platform.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

DEMO_USERS = [
    {"id": "alice", "country": "GB", "plan": "pro", "appVersion": "3.2.0"},
    {"id": "bob", "country": "US", "plan": "free", "appVersion": "2.9.1"},
    {"id": "chen", "country": "DE", "plan": "team", "appVersion": "3.0.0"},
    {"id": "dana", "country": "US", "plan": "pro", "appVersion": "3.1.4"},
]


def demo_payload() -> dict[str, Any]:
    """A small organisation's flags: a kill switch, targeting, a rollout and an A/B test."""
    return {
        "features": {
            "checkout-kill-switch": {"defaultValue": False},
            "dark-mode": {
                "defaultValue": False,
                "rules": [
                    {"id": "pro", "condition": {"plan": {"$in": ["pro", "team"]}}, "force": True}
                ],
            },
            "new-search": {
                "defaultValue": False,
                "rules": [
                    {"id": "ramp", "force": True, "coverage": 0.5, "hashVersion": 2, "seed": "ns"}
                ],
            },
            "min-app-version-banner": {
                "defaultValue": False,
                "rules": [
                    {"id": "old", "condition": {"appVersion": {"$vlt": "3.0.0"}}, "force": True}
                ],
            },
            "pricing-page": {
                "defaultValue": "control",
                "rules": [
                    {
                        "id": "pricing-test",
                        "key": "pricing-2026",
                        "variations": ["control", "annual-first"],
                        "meta": [{"key": "control"}, {"key": "annual-first"}],
                        "hashVersion": 2,
                        "seed": "pricing-2026",
                    }
                ],
            },
        }
    }  # fmt: skip


@app.command()
def demo(
    users: Annotated[int, typer.Option(help="simulated users in the A/B test")] = 20_000,
) -> None:
    """Run what liftkit has today on demo data: local flag evaluation and an A/B analysis."""
    client = liftkit.Client(payload=demo_payload(), streaming=False)
    table = Table(title="Flags evaluated locally by liftkit's SDK (GrowthBook-compatible)")
    keys = list(demo_payload()["features"])
    table.add_column("user")
    for key in keys:
        table.add_column(key)
    for attrs in DEMO_USERS:
        ctx = client.for_user(attrs)
        table.add_row(attrs["id"], *(str(ctx.get(k)) for k in keys))
    console.print(table)

    # Simulate the pricing test's traffic through the real SDK, then analyse it.
    from liftkit import stats

    rng = random.Random(2026)
    conversions = {"control": [0, 0], "annual-first": [0, 0]}
    rate = {"control": 0.10, "annual-first": 0.115}
    for i in range(users):
        variation = client.for_user({"id": f"user-{i}"}).get("pricing-page")
        conversions[variation][0] += 1
        conversions[variation][1] += rng.random() < rate[variation]
    control = stats.ProportionStats(*conversions["control"])
    treatment = stats.ProportionStats(*conversions["annual-first"])
    result = stats.compare(control, treatment)
    bayes = stats.compare(control, treatment, engine="bayesian")
    (n_control, hits_control), (n_treatment, hits_treatment) = conversions.values()
    srm = stats.srm_check([n_control, n_treatment], [0.5, 0.5])
    console.print(
        f"\n[bold]pricing-2026[/]: {n_control} vs {n_treatment} users "
        f"(SRM p = {srm.p_value:.3f}), conversion {hits_control / n_control:.2%} → "
        f"{hits_treatment / n_treatment:.2%}"
    )
    console.print(
        f"  relative lift {result.effect:+.1%} (95% CI {result.ci_low:+.1%} to "
        f"{result.ci_high:+.1%}), p = {result.p_value:.4f}; "
        f"chance to win {bayes.chance_to_win:.1%}"
    )
    console.print(
        "\nThe server, dashboard and warehouse analysis arrive with the next issues; "
        "see README.md for what exists today."
    )
    client.close()


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
