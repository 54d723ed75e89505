"""The pre-launch checklist, checked from data wherever it can be.

Each check is a small function ``(Context) -> Item`` in an ordered registry, so adding one is
one function. ``fail`` blocks the launch, ``warn`` is shown to the reviewer, ``pass`` is done.
What the checks read (records, traffic, the baseline, similar experiments) is gathered once in
a :class:`Context`, which tests build directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from liftkit.knowledge import calendar, similar
from liftkit.knowledge.planning import Feasibility
from liftkit.knowledge.records import Record
from liftkit.registry.briefs import Brief, BriefTemplate, KnowledgeSettings

Status = Literal["pass", "warn", "fail", "skip"]
#: Briefs whose change type or tags say they are A/A tests.
AA_MARKERS = frozenset({"aa", "a/a", "a-a", "aa-test"})
#: A launch that needs more than this many days is flagged (not blocked).
LONG_DAYS = 56


@dataclass(frozen=True)
class Item:
    key: str
    label: str
    status: Status
    detail: str


@dataclass(frozen=True)
class Context:
    brief: Brief
    record: Record
    records: list[Record]
    settings: KnowledgeSettings
    now: datetime
    templates: list[BriefTemplate] = field(default_factory=list)
    known_metrics: frozenset[str] | None = None
    feasibility: Feasibility | None = None
    matches: list[similar.Match] = field(default_factory=list)
    #: A/A records with the time and health of their newest snapshot (see ``aa_history``).
    aa_tests: list[tuple[Record, datetime, bool]] = field(default_factory=list)


Check = Callable[[Context], Item]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def run(ctx: Context) -> list[Item]:
    return [fn(ctx) for fn in CHECKS]


def blocking(items: list[Item]) -> list[Item]:
    return [i for i in items if i.status == "fail"]


@check
def hypothesis(ctx: Context) -> Item:
    h = ctx.brief.hypothesis
    label = "hypothesis written"
    if h.complete:
        return Item("hypothesis", label, "pass", h.text)
    missing = [n for n in ("change", "audience", "result", "reason") if not getattr(h, n).strip()]
    return Item("hypothesis", label, "fail", f"hypothesis: missing {', '.join(missing)}")


def applicable_templates(brief: Brief, templates: list[BriefTemplate]) -> list[BriefTemplate]:
    """The template the brief names, plus every template its project requires."""
    return [t for t in templates if t.key == brief.template or brief.project in t.projects]


def _empty(brief: Brief, path: str) -> bool:
    value: object = brief
    for part in path.split("."):
        value = getattr(value, part)
    if path == "hypothesis":
        return not brief.hypothesis.complete
    return value is None or value in ("", [], {})


@check
def template(ctx: Context) -> Item:
    label = "template complete"
    brief = ctx.brief
    found = applicable_templates(brief, ctx.templates)
    required = [t for t in ctx.templates if brief.project in t.projects]
    if not found:
        if brief.template is not None:
            return Item("template", label, "fail", f"template: {brief.template!r} does not exist")
        return Item("template", label, "skip", "no template applies")
    if required and brief.template not in {t.key for t in required}:
        names = ", ".join(t.key for t in required)
        return Item("template", label, "fail", f"template: project requires one of {names}")
    missing: list[str] = []
    for t in found:
        missing += [f for f in t.required_fields if _empty(brief, f) and f not in missing]
        missing += [
            f"answers.{q.key}"
            for q in t.questions
            if q.required and not brief.answers.get(q.key, "").strip()
        ]
    if missing:
        return Item("template", label, "fail", f"missing: {', '.join(missing)}")
    return Item("template", label, "pass", ", ".join(t.key for t in found))


@check
def taxonomy(ctx: Context) -> Item:
    tax, b = ctx.settings.taxonomy, ctx.brief
    wrong = [f"tags: {t!r}" for t in b.tags if tax.tags and t not in tax.tags]
    for name, value, allowed in (
        ("change_type", b.change_type, tax.change_types),
        ("surface", b.surface, tax.surfaces),
        ("funnel_stage", b.funnel_stage, tax.funnel_stages),
        ("team", b.team, tax.teams),
    ):
        if allowed and value and value not in allowed:
            wrong.append(f"{name}: {value!r} (allowed: {', '.join(allowed)})")
    if wrong:
        return Item("taxonomy", "taxonomy", "fail", "not in the taxonomy: " + "; ".join(wrong))
    return Item("taxonomy", "taxonomy", "pass", "tags and categories are in the taxonomy")


@check
def metrics(ctx: Context) -> Item:
    m = ctx.record.experiment.metrics if ctx.record.experiment else ctx.brief.metrics
    if ctx.brief.metrics.primary:
        m = ctx.brief.metrics
    label = "primary and guardrail metrics chosen"
    problems = []
    if not m.primary:
        problems.append("metrics.primary: choose one")
    if not m.guardrails:
        problems.append("metrics.guardrails: choose at least one")
    if ctx.known_metrics is not None:
        unknown = [k for k in (*m.primary, *m.guardrails) if k not in ctx.known_metrics]
        problems += [f"metric {k!r} does not exist" for k in unknown]
    if problems:
        return Item("metrics", label, "fail", "; ".join(problems))
    return Item(
        "metrics", label, "pass", f"primary {m.primary[0]}; guardrails {', '.join(m.guardrails)}"
    )


@check
def sample_size(ctx: Context) -> Item:
    label = "sample size and duration from real traffic"
    f = ctx.feasibility
    if f is None or f.days is None or f.sample_size is None:
        detail = "; ".join(f.problems) if f else "not computed"
        return Item("sample_size", label, "fail", detail)
    needed = max(f.days, ctx.brief.criteria.min_days)
    detail = (
        f"{f.sample_size:,.0f} units for a {f.mde:.1%} effect at {f.daily_units:,.0f}/day: "
        f"{f.days:.0f} days; runs {needed:.0f} days (minimum {ctx.brief.criteria.min_days})"
    )
    b = ctx.brief
    # Both planned days run the test (as on the calendar): 1–7 April is seven days.
    planned = (
        (b.planned_end - b.planned_start).days + 1 if b.planned_start and b.planned_end else None
    )
    if planned is not None and planned < needed:
        return Item("sample_size", label, "fail", f"{detail}; planned window is {planned} days")
    if f.days > LONG_DAYS:
        return Item("sample_size", label, "warn", f"{detail} — longer than {LONG_DAYS} days")
    return Item("sample_size", label, "pass", detail)


@check
def conflicts(ctx: Context) -> Item:
    label = "no conflicting experiment on the same surface and audience"
    entries = calendar.entries(ctx.records, now=ctx.now)
    if not any(e.key == ctx.brief.key for e in entries):
        return Item("conflicts", label, "warn", "no dates yet: set planned_start to check")
    clashes = [c for c in calendar.conflicts(entries) if ctx.brief.key in (c.a, c.b)]
    if clashes:
        text = "; ".join(
            f"{c.b if c.a == ctx.brief.key else c.a} ({', '.join(c.reasons)})" for c in clashes
        )
        return Item("conflicts", label, "fail", text)
    return Item("conflicts", label, "pass", "no overlapping experiment")


def aa_history(records: list[Record]) -> list[tuple[Record, datetime, bool]]:
    """A/A tests with their newest snapshot's time and whether it passed (no SRM, no effect)."""
    out = []
    for record in records:
        b = record.brief
        if record.experiment is None or not (
            b.change_type.lower() in AA_MARKERS or AA_MARKERS & {t.lower() for t in b.tags}
        ):
            continue
        snapshot = record.snapshot
        if snapshot is None:
            continue
        significant = any(
            v.significance in ("win", "lose")
            for m in snapshot.results
            if m.role == "primary"
            for v in m.variations
        )
        out.append((record, snapshot.created_at, not snapshot.health.srm and not significant))
    return out


@check
def aa_test(ctx: Context) -> Item:
    attribute = ctx.record.experiment.hash_attribute if ctx.record.experiment else "id"
    label = f"A/A test passed recently on {attribute!r}"
    since = ctx.now - timedelta(days=ctx.settings.aa_max_age_days)
    recent = [
        (r, at, ok)
        for r, at, ok in ctx.aa_tests
        if at >= since and r.experiment is not None and r.experiment.hash_attribute == attribute
    ]
    passed = [r for r, _, ok in recent if ok]
    if passed:
        return Item("aa_test", label, "pass", f"{passed[0].key} passed")
    if recent:
        return Item("aa_test", label, "fail", f"{recent[0][0].key} failed (SRM or an effect)")
    days = ctx.settings.aa_max_age_days
    return Item("aa_test", label, "fail", f"no A/A test on {attribute!r} in {days} days")


@check
def duplicates(ctx: Context) -> Item:
    label = "no near-duplicate of a past experiment"
    near = [m for m in ctx.matches if m.near_duplicate]
    failed = [m for m in near if m.failed]
    if failed:
        names = ", ".join(f"{m.key} ({m.outcome}, {m.score:.2f})" for m in failed)
        if ctx.brief.justification.strip():
            return Item("duplicates", label, "warn", f"justified re-test of {names}")
        return Item(
            "duplicates", label, "fail",
            f"near-duplicate of {names}: write a justification to launch",
        )  # fmt: skip
    if near:
        names = ", ".join(f"{m.key} ({m.outcome or m.stage}, {m.score:.2f})" for m in near)
        return Item("duplicates", label, "warn", f"similar to {names}")
    return Item("duplicates", label, "pass", "nothing similar in the knowledge base")
