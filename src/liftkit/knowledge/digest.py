"""The monthly digest: what we learned, won and lost this month.

``build(records, month)`` picks from :class:`~liftkit.knowledge.records.Record` objects what
happened in one calendar month; ``markdown`` and ``html`` render it (Jinja2 templates in
``knowledge/templates/``) and ``send`` mails both as one ``multipart/alternative`` message.

What counts where (a month is ``[first day 00:00, first day of the next month 00:00)`` in UTC;
naive datetimes are taken to be UTC, as liftkit stores them):

- **decided**: the record has an outcome and its ``decided_at`` falls in the month; grouped into
  won, lost, inconclusive and did not finish, each ordered by decision time, then key;
- **launched**: ``started_at`` (the first phase's start) falls in the month;
- **still running**: started before the month ended and neither ended nor decided by then. For
  the current month "the end" is ``now``, so the section reads "still running today". An
  experiment without an end time counts only while its stage is ``running``;
- **win rate**: won / (won + lost + inconclusive); did-not-finish tests are left out, because
  they never had a fair chance to win. ``None`` when there is nothing to divide by.

Effects are the primary metric's relative effect (of the shipped variation, else the best
treatment) with a 95% interval of effect ± 1.96·se, the fixed-horizon standard error
:mod:`liftkit.knowledge.records` recomputes.

**Markdown safety.** Titles, learnings, owners, team and hypotheses are written by users and
end up inside a Markdown document. Two rules keep them from breaking its structure:

1. Every user value is put on one line: runs of whitespace, line breaks included, collapse to a
   single space and other control characters are dropped. Each value sits after fixed text on
   its own line of a list item (never at the start of a line), so it cannot open a heading,
   quote, list, code block, table or thematic break, and whatever it leaves open (an unmatched
   `` ` ``, ``*`` or ``[``) ends with its line, because the next line starts a new list item.
2. Learnings keep their inline Markdown (**bold**, *emphasis*, `code`, links); everything else
   (titles, owners, team, hypotheses) is shown literally: ``\\ ` * _ [ ] < >`` and ``&`` before
   an entity name are backslash-escaped. Keys, metrics and variations are registry keys
   (letters, digits and ``_ . : -``) and are shown as code spans.

Paragraphs and lists inside learnings therefore run together on one line in the digest; the
brief's own page shows them as written. Raw HTML is never passed through to the HTML part:
Markdown is rendered with ``html`` off, so ``<script>`` arrives as text.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import jinja2
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from liftkit.knowledge.records import Effect, Record
from liftkit.registry.briefs import Outcome, Stage
from liftkit.warehouse.connections import WarehouseError, expand_env, redact, scrub

log = logging.getLogger("liftkit.knowledge.digest")

#: z for the digest's 95% intervals.
Z95 = 1.96
SMTP_PORT = 25
SMTPS_PORT = 465
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


class DigestError(Exception):
    """The digest could not be sent (or its mail server URL is wrong); never holds a password."""


@dataclass(frozen=True)
class PrimaryEffect:
    """The primary metric's relative effect with its 95% interval (0.03 = +3%)."""

    metric: str
    variation: str
    effect: float
    low: float
    high: float
    significance: str | None
    #: Lower is better for this metric.
    inverse: bool


@dataclass(frozen=True)
class DigestItem:
    """One experiment as the digest shows it; datetimes are aware, in UTC."""

    key: str
    title: str
    owners: tuple[str, ...]
    team: str
    stage: Stage
    outcome: Outcome | None
    primary_metric: str | None
    effect: PrimaryEffect | None
    shipped_variation: str | None
    learnings: str
    #: The brief's hypothesis sentence when all four parts are written, else "".
    hypothesis: str
    started_at: datetime | None
    ended_at: datetime | None
    decided_at: datetime | None


@dataclass(frozen=True)
class Totals:
    won: int
    lost: int
    inconclusive: int
    dnf: int
    launched: int
    running: int
    #: won / (won + lost + inconclusive); None when that is 0.
    win_rate: float | None

    @property
    def decided(self) -> int:
        return self.won + self.lost + self.inconclusive + self.dnf


@dataclass(frozen=True)
class Digest:
    """One month's digest. ``start``/``end`` bound the month (UTC, end exclusive)."""

    month: date
    start: datetime
    end: datetime
    generated_at: datetime
    won: tuple[DigestItem, ...]
    lost: tuple[DigestItem, ...]
    inconclusive: tuple[DigestItem, ...]
    dnf: tuple[DigestItem, ...]
    launched: tuple[DigestItem, ...]
    running: tuple[DigestItem, ...]
    totals: Totals

    @property
    def decided(self) -> tuple[DigestItem, ...]:
        return self.won + self.lost + self.inconclusive + self.dnf

    @property
    def title(self) -> str:
        """The month in words, e.g. "November 2026" (English, whatever the locale)."""
        return f"{_MONTHS[self.month.month - 1]} {self.month.year}"

    @property
    def subject(self) -> str:
        t = self.totals
        text = (
            f"liftkit digest — {self.title}: {t.won} won, {t.lost} lost, "
            f"{t.inconclusive} inconclusive"
        )
        return text + (f", {t.dnf} did not finish" if t.dnf else "")


# --- building -------------------------------------------------------------------------------


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of the calendar month holding ``month``, in UTC."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
    return start, datetime(*following, 1, tzinfo=UTC)


def build(records: Iterable[Record], month: date, *, now: datetime | None = None) -> Digest:
    """The digest of the calendar month holding ``month`` (any day of it).

    ``now`` (default: the current time) is when the digest is made; for the current month the
    "still running" section is as of ``now`` rather than the month's end.
    """
    start, end = month_bounds(month)
    made = datetime.now(UTC) if now is None else now
    made = made.replace(tzinfo=UTC) if made.tzinfo is None else made.astimezone(UTC)
    cutoff = min(end, made)
    decided: dict[str, list[DigestItem]] = {"won": [], "lost": [], "inconclusive": [], "dnf": []}
    launched: list[DigestItem] = []
    running: list[DigestItem] = []
    for record in records:
        started, decided_at = _utc(record.started_at), _utc(record.decided_at)
        item: DigestItem | None = None
        if record.outcome is not None and decided_at is not None and start <= decided_at < end:
            item = _item(record)
            decided[record.outcome].append(item)
        if started is not None and start <= started < end:
            item = item or _item(record)
            launched.append(item)
        if started is not None and started < cutoff and _running_at(record, cutoff):
            running.append(item or _item(record))

    def by_decision(i: DigestItem) -> tuple[datetime, str]:
        return (i.decided_at or start, i.key)

    def by_start(i: DigestItem) -> tuple[datetime, str]:
        return (i.started_at or start, i.key)

    groups = {name: tuple(sorted(items, key=by_decision)) for name, items in decided.items()}
    counted = len(groups["won"]) + len(groups["lost"]) + len(groups["inconclusive"])
    totals = Totals(
        won=len(groups["won"]),
        lost=len(groups["lost"]),
        inconclusive=len(groups["inconclusive"]),
        dnf=len(groups["dnf"]),
        launched=len(launched),
        running=len(running),
        win_rate=len(groups["won"]) / counted if counted else None,
    )
    return Digest(
        month=start.date(),
        start=start,
        end=end,
        generated_at=made,
        won=groups["won"],
        lost=groups["lost"],
        inconclusive=groups["inconclusive"],
        dnf=groups["dnf"],
        launched=tuple(sorted(launched, key=by_start)),
        running=tuple(sorted(running, key=by_start)),
        totals=totals,
    )


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _running_at(record: Record, cutoff: datetime) -> bool:
    ended, decided_at = _utc(record.ended_at), _utc(record.decided_at)
    if decided_at is not None and decided_at < cutoff:
        return False
    if ended is None:
        return record.stage == "running"
    return ended >= cutoff


def _item(record: Record) -> DigestItem:
    brief = record.brief
    return DigestItem(
        key=record.key,
        title=brief.name.strip() or record.key,
        owners=tuple(brief.owners),
        team=brief.team,
        stage=record.stage,
        outcome=record.outcome,
        primary_metric=record.primary_metric,
        effect=_primary(record.primary_effect()),
        shipped_variation=record.shipped_variation,
        learnings=brief.conclusion.learnings,
        hypothesis=brief.hypothesis.text if brief.hypothesis.complete else "",
        started_at=_utc(record.started_at),
        ended_at=_utc(record.ended_at),
        decided_at=_utc(record.decided_at),
    )


def _primary(effect: Effect | None) -> PrimaryEffect | None:
    if effect is None:
        return None
    return PrimaryEffect(
        metric=effect.metric,
        variation=effect.variation,
        effect=effect.effect,
        low=effect.effect - Z95 * effect.se,
        high=effect.effect + Z95 * effect.se,
        significance=effect.significance,
        inverse=effect.inverse,
    )


# --- Markdown -------------------------------------------------------------------------------

_LITERAL = re.compile(r"([\\`*_\[\]<>])|&(?=#?[A-Za-z0-9]+;)")


def one_line(value: object) -> str:
    """``value`` as one line: whitespace runs (line breaks too) as one space, no control chars."""
    text = " ".join(str(value).split())
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc")


def md_literal(value: object) -> str:
    """User text shown as it is: one line, with Markdown's inline syntax backslash-escaped."""
    return _LITERAL.sub(lambda m: "\\" + m.group(0), one_line(value))


def md_inline(value: object) -> str:
    """User text whose inline Markdown (bold, links, code) is kept: one line."""
    return one_line(value)


def _code(value: object) -> str:
    text = one_line(value)
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _percent(value: float, digits: int = 1) -> str:
    return f"{value * 100:+.{digits}f}%"


def _lift(effect: PrimaryEffect) -> str:
    """The effect and its interval, e.g. +3.2% (95% CI +1.0% to +5.4%); two decimals when
    every number is under 1%."""
    digits = 2 if max(abs(effect.effect), abs(effect.low), abs(effect.high)) < 0.01 else 1
    low, high = _percent(effect.low, digits), _percent(effect.high, digits)
    return f"{_percent(effect.effect, digits)} (95% CI {low} to {high})"


def _rate(value: float) -> str:
    return f"{value:.0%}"


def _day(value: datetime | None) -> str:
    return "" if value is None else value.date().isoformat()


def brief_url(base_url: str, key: str) -> str:
    """The brief's page in the knowledge base; characters that would end a Markdown link
    destination (spaces, parentheses, angle brackets) are percent-encoded."""
    base = quote(one_line(base_url).rstrip("/"), safe=":/?#[]@!$&'*+,;=%~")
    return f"{base}/knowledge/briefs/{quote(key, safe=':@')}"


def _environment(*, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("liftkit.knowledge"),
        autoescape=autoescape,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        literal=md_literal, inline=md_inline, code=_code, lift=_lift, rate=_rate, day=_day
    )
    return env


_MARKDOWN_ENV = _environment(autoescape=False)
_HTML_ENV = _environment(autoescape=True)


def markdown(digest: Digest, *, base_url: str) -> str:
    """The digest as Markdown (CommonMark), from ``templates/digest.md.j2``."""
    sections = [
        ("Won", digest.won),
        ("Lost", digest.lost),
        ("Inconclusive", digest.inconclusive),
        ("Did not finish", digest.dnf),
    ]
    text = _MARKDOWN_ENV.get_template("digest.md.j2").render(
        digest=digest,
        decided=[(label, items) for label, items in sections if items],
        link=lambda item: brief_url(base_url, item.key),
        days=lambda item: _days_running(item, digest),
    )
    # Sections left out leave blank lines behind; user text has no newlines, so this is safe.
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _days_running(item: DigestItem, digest: Digest) -> int:
    if item.started_at is None:
        return 0
    until = min(digest.end, digest.generated_at)
    return max(0, (until - item.started_at).days)


# --- HTML -----------------------------------------------------------------------------------

#: Inline styles per tag: mail clients drop <style> blocks and external CSS.
_STYLES = {
    "h1": "font-size:22px;line-height:1.3;margin:0 0 12px 0;color:#111827;",
    "h2": (
        "font-size:18px;line-height:1.3;margin:28px 0 8px 0;padding-bottom:4px;"
        "border-bottom:1px solid #e5e7eb;color:#111827;"
    ),
    "h3": "font-size:15px;line-height:1.3;margin:18px 0 6px 0;color:#111827;",
    "p": "margin:0 0 12px 0;",
    "ul": "margin:0 0 12px 0;padding-left:22px;",
    "li": "margin:0 0 6px 0;",
    "a": "color:#1d4ed8;text-decoration:underline;",
    "code": (
        "font-family:Menlo,Consolas,monospace;font-size:13px;background-color:#f3f4f6;"
        "padding:1px 4px;border-radius:3px;"
    ),
    "strong": "font-weight:bold;",
}


def _commonmark() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False})


def _style(tokens: Sequence[Token]) -> None:
    for token in tokens:
        if token.nesting >= 0 and token.tag in _STYLES:
            token.attrSet("style", _STYLES[token.tag])
        if token.children:
            _style(token.children)


def html(digest: Digest, *, base_url: str) -> str:
    """The digest as an HTML e-mail page: the Markdown rendered (raw HTML escaped) and wrapped
    in ``templates/digest.html.j2``, with inline styles only."""
    md = _commonmark()
    tokens = md.parse(markdown(digest, base_url=base_url))
    _style(tokens)
    body = md.renderer.render(tokens, md.options, {})
    return _HTML_ENV.get_template("digest.html.j2").render(
        digest=digest,
        body=Markup(body),  # markdown-it's output with raw HTML off: safe to insert as is
    )


# --- mail -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Server:
    tls: bool  # implicit TLS (smtps)
    host: str
    port: int
    user: str | None
    password: str | None


def _parse(url: str) -> _Server:
    """An ``smtp://`` / ``smtps://`` URL; errors name the URL only with its password hidden."""
    shown = redact(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise DigestError(f"invalid smtp_url {shown}: {scrub(str(error), url)}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise DigestError(
            f"invalid smtp_url {shown}: use smtp://[user:password@]host[:port] or smtps://…"
        )
    if not parts.hostname:
        raise DigestError(f"invalid smtp_url {shown}: no host")
    tls = scheme == "smtps"
    return _Server(
        tls=tls,
        host=parts.hostname,
        port=port or (SMTPS_PORT if tls else SMTP_PORT),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def message(
    digest: Digest, *, recipients: Sequence[str], mail_from: str, base_url: str
) -> EmailMessage:
    """The digest as a mail: text/plain (the Markdown) and text/html alternatives."""
    msg = EmailMessage()
    try:
        msg["Subject"] = digest.subject
        msg["From"] = mail_from
        msg["To"] = ", ".join(recipients)
        msg["Date"] = format_datetime(datetime.now(UTC))
        domain = parseaddr(mail_from)[1].rpartition("@")[2] or "liftkit.invalid"
        msg["Message-ID"] = make_msgid("digest", domain=domain)
    except ValueError as error:  # a line break or a malformed address in a header
        raise DigestError(f"cannot address the digest: {error}") from None
    msg.set_content(markdown(digest, base_url=base_url))
    msg.add_alternative(html(digest, base_url=base_url), subtype="html")
    return msg


def send(
    digest: Digest,
    *,
    recipients: list[str],
    smtp_url: str,
    mail_from: str,
    base_url: str,
    timeout: float = 10,
) -> None:
    """Mail the digest through ``smtp_url`` to ``recipients``.

    ``smtp://[user:password@]host[:port]`` (port 25) upgrades with STARTTLS when the server
    offers it, and otherwise logs in over the plain connection; ``smtps://`` (port 465) speaks
    TLS from the start. Certificates are verified against the system's trust store. ``${NAME}``
    placeholders are read from the environment; user and password are percent-decoded. Every
    failure raises :class:`DigestError`, whose message shows the URL with its password hidden.
    """
    if not recipients:
        raise DigestError("the digest has no recipients")
    if not parseaddr(mail_from)[1]:
        raise DigestError(f"mail_from {mail_from!r} is not an e-mail address")
    try:
        url = expand_env(smtp_url)
    except WarehouseError as error:
        raise DigestError(f"smtp_url: {error}") from None
    server = _parse(url)
    msg = message(digest, recipients=recipients, mail_from=mail_from, base_url=base_url)
    step = "connect to"
    try:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if server.tls:
            smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with smtp:
            step = "greet"
            smtp.ehlo()
            if not server.tls and smtp.has_extn("starttls"):
                step = "start TLS with"
                smtp.starttls(context=context)
                smtp.ehlo()
            if server.user is not None:
                if not server.tls and not isinstance(smtp.sock, ssl.SSLSocket):
                    log.warning("logging in to %s:%s without TLS", server.host, server.port)
                step = f"log in as {server.user!r} to"
                smtp.login(server.user, server.password or "")
            step = "send through"
            refused = smtp.send_message(
                msg, from_addr=parseaddr(mail_from)[1], to_addrs=list(recipients)
            )
    except (smtplib.SMTPException, OSError) as error:
        raise DigestError(f"cannot {step} {redact(url)}: {scrub(_describe(error), url)}") from None
    if refused:
        raise DigestError(
            f"{redact(url)} refused {', '.join(sorted(refused))} "
            f"(the other recipients were sent the digest): {_describe_refused(refused)}"
        )


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return f"every recipient was refused: {_describe_refused(error.recipients)}"
    if isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return f"{error.smtp_code} {one_line(text)}"
    if isinstance(error, TimeoutError):
        return "timed out"
    return one_line(str(error)) or type(error).__name__


def _describe_refused(refused: dict[str, Any]) -> str:
    parts = []
    for address, (code, reply) in sorted(refused.items()):
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        parts.append(f"{address}: {code} {one_line(text)}")
    return "; ".join(parts)
