"""The monthly digest: what goes in it, how it renders, and its delivery to a real SMTP server."""

from __future__ import annotations

import email
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from markdown_it import MarkdownIt

from liftkit.knowledge import digest
from liftkit.knowledge.digest import Digest, DigestError, build, html, markdown, send
from liftkit.knowledge.records import Effect, Record, record_of
from liftkit.registry.briefs import Brief, Conclusion, Hypothesis, Outcome, Stage
from liftkit.registry.experiments import Experiment, Phase

NOV = date(2026, 11, 17)  # any day of the month
NOV_START = datetime(2026, 11, 1, tzinfo=UTC)
DEC_START = datetime(2026, 12, 1, tzinfo=UTC)
AFTER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # the digest is made the day after
BASE = "https://liftkit.example.com"
PARIS = timezone(timedelta(hours=1))


def effect(
    variation: str = "treatment", value: float = 0.05, se: float = 0.01, **kw: Any
) -> Effect:
    fields: dict[str, Any] = {
        "metric": "purchases",
        "role": "primary",
        "variation": variation,
        "effect": value,
        "se": se,
        "baseline": 0.1,
        "units": 20_000,
        "significance": "win",
        "inverse": False,
    }
    fields.update(kw)
    return Effect(**fields)


def record(
    key: str,
    outcome: Outcome | None = None,
    decided_at: datetime | None = None,
    *,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    stage: Stage | None = None,
    effects: tuple[Effect, ...] = (),
    shipped: str | None = None,
    learnings: str = "",
    **brief: Any,
) -> Record:
    brief.setdefault("name", f"Experiment {key}")
    brief.setdefault("owners", ["ana@example.com"])
    brief.setdefault("team", "Growth")
    brief.setdefault("metrics", {"primary": ["purchases"]})
    conclusion = Conclusion(outcome=outcome, learnings=learnings, decided_at=decided_at)
    b = Brief(key=key, conclusion=conclusion, **brief)
    if stage is None:
        stage = "decided" if outcome is not None else "running" if started_at else "planned"
    return Record(
        brief=b,
        experiment=None,
        stage=stage,
        outcome=outcome,
        started_at=started_at,
        ended_at=ended_at,
        decided_at=decided_at,
        shipped_variation=shipped,
        effects=effects,
    )


def keys(items: tuple[digest.DigestItem, ...]) -> list[str]:
    return [i.key for i in items]


# --- build ----------------------------------------------------------------------------------


def test_month_boundaries_count_the_last_minute_and_not_the_next_month() -> None:
    records = [
        record("first-minute", "won", NOV_START),
        record("last-minute", "won", datetime(2026, 11, 30, 23, 59, tzinfo=UTC)),
        record("last-microsecond", "lost", DEC_START - timedelta(microseconds=1)),
        record("next-month", "won", DEC_START),
        record("previous-month", "lost", NOV_START - timedelta(minutes=1)),
        # 00:30 in Paris on 1 December is 23:30 UTC on 30 November: months are UTC months.
        record("paris", "inconclusive", datetime(2026, 12, 1, 0, 30, tzinfo=PARIS)),
        record("naive-is-utc", "dnf", datetime(2026, 11, 15, 12, 0)),
    ]
    nov = build(records, NOV, now=AFTER)
    assert nov.month == date(2026, 11, 1)
    assert (nov.start, nov.end) == (NOV_START, DEC_START)
    assert keys(nov.won) == ["first-minute", "last-minute"]
    assert keys(nov.lost) == ["last-microsecond"]
    assert keys(nov.inconclusive) == ["paris"]
    assert keys(nov.dnf) == ["naive-is-utc"]
    assert nov.dnf[0].decided_at == datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
    assert nov.inconclusive[0].decided_at == datetime(2026, 11, 30, 23, 30, tzinfo=UTC)

    dec = build(records, date(2026, 12, 31), now=datetime(2027, 1, 1, tzinfo=UTC))
    assert (dec.start, dec.end) == (DEC_START, datetime(2027, 1, 1, tzinfo=UTC))
    assert keys(dec.decided) == ["next-month"]
    assert build(records, date(2026, 10, 1), now=AFTER).lost[0].key == "previous-month"


def test_a_decision_needs_both_an_outcome_and_a_time_in_the_month() -> None:
    records = [
        record("no-time", "won", None),
        record("no-outcome", None, datetime(2026, 11, 10, tzinfo=UTC), stage="analysing"),
    ]
    got = build(records, NOV, now=AFTER)
    assert got.decided == ()
    assert got.totals.decided == 0
    assert got.totals.win_rate is None


def test_groups_totals_win_rate_and_subject() -> None:
    day = [datetime(2026, 11, d, 10, tzinfo=UTC) for d in range(1, 31)]
    records = [
        *(record(f"won-{i}", "won", day[i]) for i in range(3)),
        *(record(f"lost-{i}", "lost", day[10 + i]) for i in range(5)),
        *(record(f"inc-{i}", "inconclusive", day[20 + i]) for i in range(2)),
    ]
    got = build(records, NOV, now=AFTER)
    t = got.totals
    assert (t.won, t.lost, t.inconclusive, t.dnf, t.decided) == (3, 5, 2, 0, 10)
    assert t.win_rate == pytest.approx(0.3)
    assert got.subject == "liftkit digest — November 2026: 3 won, 5 lost, 2 inconclusive"

    # Did-not-finish tests are listed but left out of the win rate.
    with_dnf = build([*records, record("dnf-0", "dnf", day[29])], NOV, now=AFTER)
    assert with_dnf.totals.win_rate == pytest.approx(0.3)
    assert keys(with_dnf.dnf) == ["dnf-0"]
    assert with_dnf.subject.endswith("2 inconclusive, 1 did not finish")

    only_dnf = build([record("dnf-0", "dnf", day[3])], NOV, now=AFTER)
    assert only_dnf.totals.win_rate is None
    assert "Win rate: none yet" in markdown(only_dnf, base_url=BASE)


def test_ordering_is_by_time_then_key_whatever_the_input_order() -> None:
    same = datetime(2026, 11, 20, 9, tzinfo=UTC)
    records = [
        record("b", "won", same),
        record("a", "won", same),
        record("z-early", "won", same - timedelta(days=5)),
        record("c", "lost", same, started_at=datetime(2026, 11, 2, tzinfo=UTC)),
        record("d", None, None, started_at=datetime(2026, 11, 2, tzinfo=UTC)),
        record("e", None, None, started_at=datetime(2026, 11, 1, tzinfo=UTC)),
    ]
    one = build(records, NOV, now=AFTER)
    other = build(list(reversed(records)), NOV, now=AFTER)
    assert one == other
    assert markdown(one, base_url=BASE) == markdown(other, base_url=BASE)
    assert keys(one.won) == ["z-early", "a", "b"]
    assert keys(one.launched) == ["e", "c", "d"]
    assert keys(one.running) == ["e", "d"]


def test_launched_and_still_running_at_the_end_of_the_month() -> None:
    oct_1 = datetime(2026, 10, 1, tzinfo=UTC)
    nov_10 = datetime(2026, 11, 10, tzinfo=UTC)
    records = [
        record("launched-running", started_at=nov_10),
        record("launched-last-minute", started_at=DEC_START - timedelta(minutes=1)),
        record("launched-next-month", started_at=DEC_START),
        record("older-running", started_at=oct_1),
        # It stopped in December, so it was still running when November ended.
        record(
            "stopped-later",
            started_at=oct_1,
            ended_at=DEC_START + timedelta(days=3),
            stage="analysing",
        ),
        record("stopped-in-month", started_at=oct_1, ended_at=nov_10, stage="analysing"),
        record("decided-in-month", "lost", nov_10, started_at=oct_1, ended_at=nov_10),
        # Stopped, but the end time is unknown: not counted as running.
        record("no-end-time", started_at=oct_1, stage="analysing"),
        record("archived", started_at=oct_1, stage="archived"),
        record("never-started"),
    ]
    got = build(records, NOV, now=AFTER)
    assert keys(got.launched) == ["launched-running", "launched-last-minute"]
    assert keys(got.running) == [
        "older-running",
        "stopped-later",
        "launched-running",
        "launched-last-minute",
    ]
    assert (got.totals.launched, got.totals.running) == (2, 4)


def test_the_current_month_shows_what_is_running_now() -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    records = [
        record("running", started_at=datetime(2026, 11, 2, tzinfo=UTC)),
        record(
            "stopped-yesterday",
            started_at=datetime(2026, 11, 2, tzinfo=UTC),
            ended_at=now - timedelta(days=1),
            stage="analysing",
        ),
    ]
    got = build(records, NOV, now=now)
    assert got.generated_at == now
    assert keys(got.running) == ["running"]
    text = markdown(got, base_url=BASE)
    assert "still running on 2026-11-20" in text
    assert "running since 2026-11-02" in text
    assert "18 days so far" in text


def test_items_carry_the_primary_effect_with_a_95_percent_interval() -> None:
    effects = (
        effect("treatment", 0.05, 0.01),
        effect("bold", 0.08, 0.02),
        effect("bold", 0.5, 0.1, metric="clicks", role="secondary"),
    )
    shipped = record(
        "shipped",
        "won",
        datetime(2026, 11, 5, tzinfo=UTC),
        effects=effects,
        shipped="treatment",
        learnings="Shorter forms win.",
        owners=["ana", "bo"],
        team="Checkout",
    )
    best = record("best", "inconclusive", datetime(2026, 11, 6, tzinfo=UTC), effects=effects)
    none = record("none", "lost", datetime(2026, 11, 7, tzinfo=UTC))
    got = build([shipped, best, none], NOV, now=AFTER)
    (item,) = got.won
    assert (item.title, item.owners, item.team) == ("Experiment shipped", ("ana", "bo"), "Checkout")
    assert (item.outcome, item.primary_metric, item.shipped_variation) == (
        "won",
        "purchases",
        "treatment",
    )
    assert item.learnings == "Shorter forms win."
    assert item.effect is not None
    assert item.effect.variation == "treatment"
    assert item.effect.effect == pytest.approx(0.05)
    assert item.effect.low == pytest.approx(0.05 - 1.96 * 0.01)
    assert item.effect.high == pytest.approx(0.05 + 1.96 * 0.01)
    # Nothing shipped: the best treatment on the primary metric.
    assert got.inconclusive[0].effect is not None
    assert got.inconclusive[0].effect.variation == "bold"
    assert got.lost[0].effect is None


def test_records_built_from_an_experiment() -> None:
    started = datetime(2026, 10, 20, tzinfo=UTC)
    ended = datetime(2026, 11, 18, 16, 30, tzinfo=UTC)
    experiment = Experiment(
        key="exp-checkout",
        status="stopped",
        result="won",
        released_variation="treatment",
        phases=[Phase(started_at=started, ended_at=ended)],
        metrics={"primary": ["purchases"]},
    )
    brief = Brief(
        key="checkout",
        name="One-page checkout",
        experiment="exp-checkout",
        owners=["ana"],
        team="Checkout",
        hypothesis=Hypothesis(
            change="one page", audience="all buyers", result="buy more", reason="less friction"
        ),
        conclusion=Conclusion(learnings="Fewer steps, more orders."),
    )
    rec = record_of(brief, experiment, None, synthetic=False)
    got = build([rec], NOV, now=AFTER)
    (item,) = got.won
    assert (item.key, item.decided_at, item.shipped_variation) == ("checkout", ended, "treatment")
    assert item.started_at == started
    assert item.hypothesis.startswith("We think one page for all buyers")
    assert got.running == ()
    assert build([rec], date(2026, 10, 1), now=AFTER).running[0].key == "checkout"
    assert keys(build([rec], date(2026, 10, 1), now=AFTER).launched) == ["checkout"]


# --- Markdown and HTML ----------------------------------------------------------------------


@pytest.fixture
def november() -> Digest:
    records = [
        record(
            "checkout-v2",
            "won",
            datetime(2026, 11, 12, 8, tzinfo=UTC),
            started_at=datetime(2026, 10, 1, tzinfo=UTC),
            ended_at=datetime(2026, 11, 11, tzinfo=UTC),
            effects=(effect("treatment", 0.032, 0.011),),
            shipped="treatment",
            name="One-page checkout",
            owners=["ana@example.com", "bo@example.com"],
            team="Checkout",
            learnings="Buyers **love** fewer steps; see [the doc](https://docs.example.com/c).",
        ),
        record(
            "banner",
            "lost",
            datetime(2026, 11, 20, tzinfo=UTC),
            effects=(effect("treatment", -0.021, 0.008, significance="lose"),),
            name="Promo banner",
            learnings="<script>alert('x')</script> Banners annoy people.",
        ),
        record(
            "search",
            None,
            None,
            started_at=datetime(2026, 11, 3, tzinfo=UTC),
            name="Search ranking",
            owners=[],
            team="",
            hypothesis=Hypothesis(
                change="semantic ranking",
                audience="searchers",
                result="find more",
                reason="better matches",
            ),
        ),
    ]
    return build(records, NOV, now=AFTER)


def test_markdown_content(november: Digest) -> None:
    text = markdown(november, base_url=BASE + "/")
    assert text.startswith("# liftkit digest — November 2026\n")
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "**1** won · **1** lost · **0** inconclusive · **0** did not finish" in text
    assert "Win rate: **50%** (1 of 2;" in text
    assert "## Decided (2)" in text and "### Won (1)" in text and "### Lost (1)" in text
    assert "### Inconclusive" not in text  # empty groups are left out
    assert (
        "- [One-page checkout](https://liftkit.example.com/knowledge/briefs/checkout-v2) "
        "`checkout-v2` — decided 2026-11-12\n"
        "  - Owners: ana@example.com, bo@example.com · Team: Checkout\n"
        "  - Primary metric `purchases`: +3.2% (95% CI +1.0% to +5.4%) for `treatment`,"
        " statistically significant\n"
        "  - Shipped: `treatment`\n"
        "  - Learnings: Buyers **love** fewer steps; see [the doc](https://docs.example.com/c).\n"
    ) in text
    assert "`purchases`: -2.1% (95% CI -3.7% to -0.5%) for `treatment`" in text
    assert "## Launched (1)" in text
    assert (
        "- [Search ranking](https://liftkit.example.com/knowledge/briefs/search) `search` — started"
        in text
    )
    assert "  - Hypothesis: We think semantic ranking for searchers will find more" in text
    assert "## Still running (1)" in text  # checkout-v2 ended on 11 November
    assert "`search` — running since 2026-11-03\n  - 28 days so far\n" in text


def test_markdown_is_a_template_file() -> None:
    templates = Path(digest.__file__).parent / "templates"
    assert (templates / "digest.md.j2").is_file()
    assert (templates / "digest.html.j2").is_file()


def test_user_text_cannot_break_the_markdown_structure() -> None:
    hostile_title = "# Title\n\n- [not](a list) `tick *star _under <b>"
    hostile_learnings = (
        "First line\n\n# Not a heading\n> not a quote\n```\nnot code\n```\n---\n"
        "[dangling ( `open * and **bold** still works"
    )
    records = [
        record(
            "hostile",
            "won",
            datetime(2026, 11, 5, tzinfo=UTC),
            name=hostile_title,
            owners=["[me](http://evil.example)"],
            team="*Team*\n## x",
            learnings=hostile_learnings,
        ),
        record("next", "lost", datetime(2026, 11, 6, tzinfo=UTC), learnings="plain"),
    ]
    got = build(records, NOV, now=AFTER)
    text = markdown(got, base_url=BASE)
    # Every user value stays on its own line of its list item.
    assert (
        "Learnings: First line # Not a heading > not a quote ``` not code ``` --- [dangling" in text
    )
    tokens = MarkdownIt("commonmark").parse(text)
    kinds = {t.type for t in tokens}
    assert not kinds & {"fence", "code_block", "blockquote_open", "hr"}
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == [
        "liftkit digest — November 2026",
        "Decided (2)",
        "Won (1)",
        "Lost (1)",
        "Launched (0)",
        "Still running (0)",
    ]
    # Both experiments are still separate items, and the second one is intact.
    assert "- [Experiment next](https://liftkit.example.com/knowledge/briefs/next) `next`" in text
    assert "  - Learnings: plain\n" in text

    page = html(got, base_url=BASE)
    # The title is shown literally as one link; owners are text, not links.
    assert "# Title - [not](a list) `tick *star _under &lt;b&gt;</a>" in page
    assert 'href="http://evil.example"' not in page
    assert "[me](http://evil.example)" in page
    assert "*Team* ## x" in page
    # Learnings keep their inline Markdown.
    assert "<strong" in page and ">bold</strong>" in page


def test_html_escapes_raw_html_and_renders_markdown(november: Digest) -> None:
    page = html(november, base_url=BASE)
    assert "<script>" not in page
    assert "&lt;script&gt;alert('x')&lt;/script&gt; Banners annoy people." in page
    assert ">love</strong> fewer steps" in page
    assert '<a href="https://docs.example.com/c"' in page
    assert '<a href="https://liftkit.example.com/knowledge/briefs/checkout-v2"' in page
    assert "<title>liftkit digest — November 2026: 1 won, 1 lost, 0 inconclusive</title>" in page
    # Inline styles only: mail clients drop <style> blocks and external stylesheets.
    assert page.startswith("<!DOCTYPE html>")
    assert "<style" not in page and "<link" not in page
    assert '<h2 style="' in page and '<li style="' in page and '<code style="' in page


def test_html_drops_javascript_links_in_learnings() -> None:
    rec = record(
        "x",
        "won",
        datetime(2026, 11, 5, tzinfo=UTC),
        learnings="[click](javascript:alert(1)) <img src=x onerror=alert(1)>",
    )
    page = html(build([rec], NOV, now=AFTER), base_url=BASE)
    assert "javascript:" not in page.replace("[click](javascript:alert(1))", "")
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_an_empty_month() -> None:
    got = build([], NOV, now=AFTER)
    text = markdown(got, base_url=BASE)
    assert "Nothing was decided this month." in text
    assert "Nothing was launched this month." in text
    assert "Nothing was running at the end of the month." in text
    assert got.subject == "liftkit digest — November 2026: 0 won, 0 lost, 0 inconclusive"
    assert "<h1" in html(got, base_url=BASE)


# --- mail -----------------------------------------------------------------------------------


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    envelopes: list[Envelope] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    #: Whether each message came over TLS (implicit or after STARTTLS).
    tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.sessions.append(session)
        self.tls.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 OK"

    def message(self) -> EmailMessage:
        (envelope,) = self.envelopes
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


USER, PASSWORD = "digest@example.com", "p@ss:w/rd s3cret"
QUOTED_PASSWORD = "p%40ss%3Aw%2Frd%20s3cret"


def authenticator(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@contextmanager
def serve(inbox: Inbox, **kwargs: Any) -> Iterator[int]:
    """A real SMTP server (aiosmtpd, in a thread) on 127.0.0.1 and a free port."""
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, server_hostname="localhost", **kwargs
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def smtp_port(inbox: Inbox) -> Iterator[int]:
    with serve(inbox) as port:
        yield port


@pytest.fixture
def auth_port(inbox: Inbox) -> Iterator[int]:
    """Plain SMTP with AUTH (allowed without TLS here: a local test server)."""
    with serve(inbox, authenticator=authenticator, auth_require_tls=False) as port:
        yield port


def test_send_delivers_text_and_html_alternatives(
    november: Digest, inbox: Inbox, smtp_port: int
) -> None:
    recipients = ["team@example.com", "Lead <lead@example.com>"]
    send(
        november,
        recipients=recipients,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        mail_from="liftkit <liftkit@example.com>",
        base_url=BASE,
    )
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "liftkit@example.com"
    assert envelope.rcpt_tos == ["team@example.com", "lead@example.com"]
    msg = inbox.message()
    assert msg["Subject"] == "liftkit digest — November 2026: 1 won, 1 lost, 0 inconclusive"
    assert msg["From"] == "liftkit <liftkit@example.com>"
    assert msg["To"] == "team@example.com, Lead <lead@example.com>"
    assert msg["Message-ID"].endswith("@example.com>") and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = list(msg.iter_parts())
    assert plain.get_content_type() == "text/plain"
    assert rich.get_content_type() == "text/html"
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    # Line ends arrive as CRLF, as SMTP sends them.
    assert plain.get_content().replace("\r\n", "\n") == markdown(november, base_url=BASE)
    assert rich.get_content().replace("\r\n", "\n") == html(november, base_url=BASE)
    assert inbox.tls == [False]  # this server offers no STARTTLS


def test_send_logs_in_with_url_decoded_credentials_from_the_environment(
    november: Digest, inbox: Inbox, auth_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", QUOTED_PASSWORD)
    send(
        november,
        recipients=["team@example.com"],
        smtp_url=f"smtp://digest%40example.com:${{DIGEST_SMTP_PASSWORD}}@127.0.0.1:{auth_port}",
        mail_from="liftkit@example.com",
        base_url=BASE,
    )
    (session,) = inbox.sessions
    assert session.authenticated
    assert session.auth_data == (USER.encode(), PASSWORD.encode())


def test_a_refused_login_does_not_show_the_password(
    november: Digest, inbox: Inbox, auth_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wr%40ng-s3cret"
    with pytest.raises(DigestError) as raised:
        send(
            november,
            recipients=["team@example.com"],
            smtp_url=f"smtp://digest%40example.com:{wrong}@127.0.0.1:{auth_port}",
            mail_from="liftkit@example.com",
            base_url=BASE,
        )
    message = str(raised.value)
    assert "log in as 'digest@example.com'" in message
    assert "535" in message
    assert f"smtp://digest%40example.com:***@127.0.0.1:{auth_port}" in message
    for secret in (wrong, "wr@ng-s3cret", "s3cret"):
        assert secret not in message
        assert secret not in caplog.text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert inbox.envelopes == []


def test_connection_refused_raises_a_digest_error_without_the_password(
    november: Digest, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(DigestError) as raised:
        send(
            november,
            recipients=["team@example.com"],
            smtp_url=f"smtp://bot:{QUOTED_PASSWORD}@127.0.0.1:{port}",
            mail_from="liftkit@example.com",
            base_url=BASE,
            timeout=2,
        )
    message = str(raised.value)
    assert message.startswith(f"cannot connect to smtp://bot:***@127.0.0.1:{port}")
    assert "refused" in message.lower()
    for secret in (QUOTED_PASSWORD, PASSWORD, "s3cret"):
        assert secret not in message and secret not in caplog.text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://bot:s3cret@127.0.0.1", "use smtp://"),
        ("smtp://bot:s3cret@:25", "no host"),
        ("smtp://bot:s3cret@127.0.0.1:port", "invalid smtp_url smtp://bot:***@127.0.0.1:port"),
        ("smtp://bot:${LIFTKIT_TEST_UNSET_VARIABLE}@127.0.0.1", "LIFTKIT_TEST_UNSET_VARIABLE"),
    ],
)
def test_bad_smtp_urls(november: Digest, url: str, expected: str) -> None:
    with pytest.raises(DigestError) as raised:
        send(
            november,
            recipients=["a@example.com"],
            smtp_url=url,
            mail_from="l@example.com",
            base_url=BASE,
        )
    assert expected in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_bad_addresses(november: Digest, inbox: Inbox, smtp_port: int) -> None:
    url = f"smtp://127.0.0.1:{smtp_port}"
    with pytest.raises(DigestError, match="no recipients"):
        send(november, recipients=[], smtp_url=url, mail_from="l@example.com", base_url=BASE)
    with pytest.raises(DigestError, match="cannot address the digest"):
        send(
            november,
            recipients=["a@example.com\r\nBcc: spy@example.com"],
            smtp_url=url,
            mail_from="l@example.com",
            base_url=BASE,
        )
    with pytest.raises(DigestError, match="not an e-mail address"):
        send(november, recipients=["a@example.com"], smtp_url=url, mail_from="", base_url=BASE)
    assert inbox.envelopes == []


def test_the_default_ports() -> None:
    assert digest._parse("smtp://mail.example.com").port == 25
    assert digest._parse("smtps://mail.example.com").port == 465
    server = digest._parse("SMTPS://a%20b:c%3Ad@[::1]:2465")
    assert (server.tls, server.host, server.port) == (True, "::1", 2465)
    assert (server.user, server.password) == ("a b", "c:d")


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signed for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("liftkit test CA"))
        .issuer_name(name("liftkit test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def server_context(tls_files: tuple[Path, Path, Path]) -> ssl.SSLContext:
    _, cert_file, key_file = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_starttls_is_used_when_offered_and_the_login_goes_over_it(
    november: Digest,
    inbox: Inbox,
    tls_files: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ssl.create_default_context() reads SSL_CERT_FILE: the test CA stands in for the system's.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    # auth_require_tls (the default) refuses AUTH before STARTTLS: a login proves the upgrade.
    with serve(inbox, tls_context=server_context(tls_files), authenticator=authenticator) as port:
        send(
            november,
            recipients=["team@example.com"],
            smtp_url=f"smtp://digest%40example.com:{QUOTED_PASSWORD}@127.0.0.1:{port}",
            mail_from="liftkit@example.com",
            base_url=BASE,
        )
    (session,) = inbox.sessions
    assert session.ssl is not None  # set by STARTTLS
    assert inbox.tls == [True]
    assert session.authenticated
    assert inbox.message()["Subject"].startswith("liftkit digest — November 2026")


def test_an_untrusted_certificate_stops_delivery(
    november: Digest,
    inbox: Inbox,
    tls_files: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[1].parent / "missing.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tls_files[1].parent / "missing"))
    with (
        serve(inbox, tls_context=server_context(tls_files)) as port,
        pytest.raises(DigestError, match="cannot start TLS with") as raised,
    ):
        send(
            november,
            recipients=["team@example.com"],
            smtp_url=f"smtp://u:s3cret@127.0.0.1:{port}",
            mail_from="l@example.com",
            base_url=BASE,
        )
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
    assert "s3cret" not in str(raised.value)
    assert inbox.envelopes == []


def test_smtps_speaks_tls_from_the_start(
    november: Digest,
    inbox: Inbox,
    tls_files: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    with serve(inbox, ssl_context=server_context(tls_files)) as port:
        send(
            november,
            recipients=["team@example.com"],
            smtp_url=f"smtps://127.0.0.1:{port}",
            mail_from="liftkit@example.com",
            base_url=BASE,
        )
    assert inbox.tls == [True]
    assert inbox.message().get_content_type() == "multipart/alternative"
