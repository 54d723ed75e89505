"""``KnowledgeBase``: the one object the API and the CLI use for everything in this package.

It gathers what the pure modules need (records, settings, templates, traffic, baselines,
snapshots) from the platform and hands it over; the rules themselves live in the modules named
after them (lifecycle, checklist, similar, search, planning, meta, calendar, digest, reminders).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from liftkit.analysis.plan import PlanError
from liftkit.knowledge import calendar, checklist, lifecycle, meta, planning, reminders
from liftkit.knowledge import digest as digests
from liftkit.knowledge.records import Record, load, record_of
from liftkit.knowledge.search import Filters, Hit, Index
from liftkit.knowledge.similar import Match, similar
from liftkit.platform import Platform
from liftkit.registry.briefs import Brief, BriefTemplate, KnowledgeSettings, Outcome, Stage
from liftkit.registry.errors import NotFound
from liftkit.registry.experiments import Experiment
from liftkit.registry.metrics import Metric
from liftkit.warehouse.connections import WarehouseError

SETTINGS_KEY = "default"


@dataclass(frozen=True)
class Idea:
    record: Record
    score: float | None
    opportunity: planning.Opportunity
    feasibility: planning.Feasibility


class KnowledgeBase:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.index = Index(platform)

    # -- reading -------------------------------------------------------------------------------

    def settings(self) -> KnowledgeSettings:
        found = self.platform.registry.find("knowledge-settings", SETTINGS_KEY)
        return found if isinstance(found, KnowledgeSettings) else KnowledgeSettings(key="default")

    def templates(self) -> list[BriefTemplate]:
        return list(self.platform.registry.all("brief-templates"))

    def records(self, project: str | None = None) -> list[Record]:
        return load(self.platform, project=project)

    def record(self, key: str, records: list[Record] | None = None) -> Record:
        for record in records if records is not None else self.records():
            if record.key == key:
                return record
        raise NotFound(f"Brief {key!r} not found")

    def brief(self, key: str) -> Brief:
        found = self.platform.registry.get("briefs", key)
        assert isinstance(found, Brief)
        return found

    # -- memory --------------------------------------------------------------------------------

    def search(
        self, query: str = "", filters: Filters | None = None, *, limit: int = 20, offset: int = 0
    ) -> tuple[list[Hit], int]:
        return self.index.search(query, filters, limit=limit, offset=offset)

    def similar(
        self, brief: Brief, records: list[Record] | None = None, *, limit: int = 5
    ) -> list[Match]:  # fmt: skip
        records = records if records is not None else self.records()
        settings = self.settings()
        return similar(
            brief, records, threshold=settings.duplicate_threshold, limit=limit,
            synonyms=settings.synonyms,
        )  # fmt: skip

    def history(self, records: list[Record] | None = None) -> list[meta.MetricHistory]:
        return meta.effect_distribution(records if records is not None else self.records())

    # -- planning ------------------------------------------------------------------------------

    def traffic(self, hash_attribute: str, datasource: str) -> planning.Traffic | None:
        try:
            return planning.measure_traffic(
                self.platform, hash_attribute=hash_attribute, datasource=datasource
            )
        except (WarehouseError, PlanError):
            return None

    def feasibility(
        self, brief: Brief, records: list[Record], cache: dict[Any, Any] | None = None
    ) -> planning.Feasibility:
        record = next((r for r in records if r.key == brief.key), None)
        experiment = record.experiment if record else None
        attribute = experiment.hash_attribute if experiment else "id"
        source = experiment.analysis.datasource if experiment else "events"
        cache = {} if cache is None else cache
        if (attribute, source) not in cache:
            cache[(attribute, source)] = self.traffic(attribute, source)
        metric = brief.metrics.primary[0] if brief.metrics.primary else None
        if metric is None and experiment is not None and experiment.metrics.primary:
            metric = experiment.metrics.primary[0]
        baseline = None
        if metric is not None:
            if ("baseline", metric) not in cache:
                cache[("baseline", metric)] = planning.metric_baseline(records, metric)
            baseline = cache[("baseline", metric)]
        if "mde" not in cache:  # one pass over the history serves every brief
            cache["mde"] = {h.metric: h.default_mde for h in meta.effect_distribution(records)}
        arms = len(experiment.variations) if experiment else 2
        return planning.feasibility(
            brief, baseline=baseline, traffic=cache[(attribute, source)],
            default_mde=cache["mde"].get(metric), arms=arms,
        )  # fmt: skip

    def checklist(self, brief: Brief, records: list[Record] | None = None) -> list[checklist.Item]:
        records = records if records is not None else self.records()
        record = next((r for r in records if r.key == brief.key), None)
        if record is None or record.brief != brief:  # a draft, or an edit not yet indexed
            found = self.platform.registry.find("experiments", brief.experiment or "")
            experiment = found if isinstance(found, Experiment) else None
            record = record_of(brief, experiment, None, synthetic=False)
            records = [r for r in records if r.key != brief.key] + [record]
        ctx = checklist.Context(
            brief=brief,
            record=record,
            records=records,
            settings=self.settings(),
            now=self.platform.clock(),
            templates=self.templates(),
            known_metrics=frozenset(
                m.key for m in self.platform.registry.all("metrics") if isinstance(m, Metric)
            ),
            feasibility=self.feasibility(brief, records),
            # Only the brief's project: the checklist is read by that project's viewers.
            matches=self.similar(brief, [r for r in records if r.brief.project == brief.project]),
            aa_tests=checklist.aa_history(records),
        )
        return checklist.run(ctx)

    def ideas(self, project: str | None = None) -> list[Idea]:
        """Briefs not yet launched, best score first (unscored last)."""
        records = self.records()
        framework = self.settings().scoring
        cache: dict[Any, Any] = {}
        out = []
        for record in records:
            if record.stage not in ("idea", "planned", "in_review") or record.synthetic:
                continue
            if project is not None and record.brief.project != project:
                continue
            feasible = self.feasibility(record.brief, records, cache)
            out.append(
                Idea(
                    record=record,
                    score=planning.score(record.brief.scores, framework),
                    opportunity=planning.opportunity(
                        record.brief, baseline=feasible.baseline, traffic=feasible.traffic
                    ),
                    feasibility=feasible,
                )
            )
        return sorted(out, key=lambda i: (i.score is None, -(i.score or 0.0), i.record.key))

    # -- lifecycle -----------------------------------------------------------------------------

    def move(self, key: str, to: Stage, actor: str) -> Brief:
        return lifecycle.move(self.platform, key, to, actor)

    def submit(self, key: str, actor: str) -> Brief:
        return lifecycle.submit(self.platform, key, actor, self.checklist(self.brief(key)))

    def review(self, key: str, actor: str, decision: str, comment: str = "") -> Brief:
        return lifecycle.review(self.platform, key, actor, decision, comment)

    def launch(self, key: str, actor: str) -> Brief:
        return lifecycle.launch(self.platform, key, actor, self.checklist(self.brief(key)))

    def conclude(self, key: str, actor: str, outcome: Outcome, learnings: str = "") -> Brief:
        return lifecycle.conclude(self.platform, key, actor, outcome, learnings)

    def ship(self, key: str, actor: str) -> Brief:
        return lifecycle.ship(self.platform, key, actor)

    # -- calendar, digest, reminders -------------------------------------------------------------

    def calendar(
        self, project: str | None = None
    ) -> tuple[list[calendar.Entry], list[calendar.Conflict]]:  # fmt: skip
        entries = calendar.entries(self.records(project), now=self.platform.clock())
        return entries, calendar.conflicts(entries)

    def ics(self, project: str | None = None) -> bytes:
        entries, conflicts = self.calendar(project)
        name = "liftkit experiments" + (f" — {project}" if project else "")
        return calendar.to_ics(
            entries, conflicts, calendar_name=name, base_url=self.platform.settings.base_url
        )

    def digest(self, month: date) -> digests.Digest:
        return digests.build(self.records(), month, now=self.platform.clock())

    def send_digest(self, month: date, recipients: list[str] | None = None) -> digests.Digest:
        settings = self.platform.settings
        to = recipients or self.settings().digest_recipients
        if not settings.smtp_url:
            raise digests.DigestError("smtp_url: no mail server is configured")
        if not to:
            raise digests.DigestError("recipients: none given and digest_recipients is empty")
        built = self.digest(month)
        digests.send(
            built, recipients=to, smtp_url=settings.smtp_url, mail_from=settings.mail_from,
            base_url=settings.base_url,
        )  # fmt: skip
        return built

    def reminders(self, now: datetime | None = None) -> list[reminders.Reminder]:
        return reminders.due(
            self.records(),
            reminders.warranties(self.platform),
            now=now or self.platform.clock(),
            settings=self.settings(),
        )
