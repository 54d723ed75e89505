"""Near-duplicate detection: which past experiments a brief resembles, and how they ended.

People re-propose old ideas in new words, so exact matching finds little. A brief is compared
with every other record on what it *changes* more than on where: TF-IDF cosine similarity over
word stems and over character 4-grams (which catch "deliver"/"delivery"/"delivered" and
compound spellings), with the hypothesis's change and the title weighted above the rest. Shared
surface, primary metric and change type add a little, so among equally worded briefs the one
on the same page ranks first; they cannot make two different changes look alike on their own.

IDF is computed over the knowledge base itself, so words every brief uses ("users",
"increase", "conversion") count for little and distinctive ones ("threshold", "wishlist")
for a lot. At a few thousand briefs this is milliseconds; no model, no external service.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from liftkit.knowledge.records import Record
from liftkit.registry.briefs import Brief

#: Outcomes that make re-running the same idea need a written justification.
FAILED = frozenset({"lost", "inconclusive"})
_WORD_OR_HYPHEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_STOP = frozenset(
    (
        "a", "an", "the", "and", "or", "but", "if", "then", "than", "so", "to", "of", "in", "on",
        "at", "by", "for", "with", "from", "into", "onto", "over", "under", "about", "as", "is",
        "are", "was", "were", "be", "been", "being", "it", "its", "this", "that", "these", "those",
        "we", "our", "us", "you", "your", "they", "their", "them", "he", "she", "his", "her", "i",
        "my", "me", "will", "would", "should", "could", "can", "may", "might", "must", "do",
        "does", "did", "done", "have", "has", "had", "not", "no", "more", "most", "less", "least",
        "very", "just", "also", "only", "which", "who",
        "whom", "what", "when", "where", "why", "how", "all",
        "any", "each", "every", "some", "such", "other", "same", "own", "up", "down", "out", "off",
        "again", "further", "once", "here", "there", "both", "few", "many", "much", "per", "via",
        "vs", "because", "think",
    )
)  # fmt: skip
#: Growth-experiment vocabulary that means the same thing in briefs written by different people
#: (and British/American spellings). The first word of a group stands for all of it; teams add
#: their own groups in the knowledge-base settings (``synonyms``).
THESAURUS: tuple[tuple[str, ...], ...] = (
    ("shipping", "delivery", "postage", "freight", "shipment"),
    ("threshold", "minimum", "min"),
    ("discount", "coupon", "voucher", "promo", "incentive", "markdown"),
    ("cart", "basket"),
    ("skip", "bypass", "optional", "opt-out"),
    ("quiz", "questionnaire", "questions", "question"),
    ("sticky", "pinned", "persistent", "floating"),
    ("button", "cta"),
    ("badge", "label", "ribbon"),
    ("popular", "bestseller", "bestsellers", "bestselling", "trending"),
    ("signup", "registration", "register", "sign-up"),
    ("cancel", "cancellation", "unsubscribe"),
    ("annual", "yearly"),
    ("price", "pricing", "cost", "fee", "charge"),
    ("email", "newsletter", "e-mail", "mail", "emails"),
    (
        "personalise",
        "personalize",
        "personalised",
        "personalized",
        "personalisation",
        "personalization",
    ),
    ("recommendation", "suggestion", "recommended", "suggested", "recommend", "suggest"),
    ("review", "rating", "ratings", "testimonial", "testimonials", "stars"),
    ("mobile", "phone", "smartphone"),
    ("homepage", "landing"),
    ("abandon", "abandonment", "drop-off", "dropoff", "bounce"),
    ("onboarding", "setup", "set-up"),
    ("lower", "reduce", "decrease", "cut", "cutting", "dropping", "lowering", "reducing"),
    ("show", "display", "reveal", "surface", "showing", "displaying"),
    ("hide", "collapse", "hiding", "collapsing"),
    ("default", "preselect", "preselected", "pre-selected", "preselecting"),
    ("shorten", "shorter", "simplify", "simpler", "fewer"),
    ("urgency", "scarcity", "countdown", "timer"),
    ("speed", "performance", "latency", "faster", "slow", "load"),
    ("image", "photo", "picture", "photos", "images"),
    ("upgrade", "upsell"),
    ("invite", "invitation", "referral", "refer"),
    ("colour", "color"),
    ("flavour", "flavor", "taste"),
    ("favourite", "favorite", "wishlist"),
    ("optimise", "optimize"),
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ness", "ments", "ment", "ies", "ied", "es",
             "ed", "ly", "er", "s")  # fmt: skip
#: Weights of the text fields (the change is what makes an idea the same idea).
_FIELDS = (("change", 3.0), ("title", 2.0), ("result", 1.0), ("reason", 0.5), ("audience", 0.5),
           ("description", 1.0))  # fmt: skip
_TEXT_WEIGHT, _CHAR_WEIGHT, _FACETS_WEIGHT = 0.5, 0.3, 0.2


@dataclass(frozen=True)
class Match:
    key: str
    title: str
    stage: str
    outcome: str | None
    score: float
    near_duplicate: bool
    #: A near-duplicate whose outcome was lost or inconclusive: launching needs a justification.
    failed: bool
    shared_terms: tuple[str, ...]


def stem(word: str) -> str:
    """A light suffix-stripping stemmer (enough to join plural, -ing, -ed and -ation forms)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def thesaurus(extra: Iterable[Sequence[str]] = ()) -> dict[str, str]:
    """Word → the canonical word of its synonym group."""
    out: dict[str, str] = {}
    for group in (*THESAURUS, *extra):
        words = [w.lower().strip() for w in group if w.strip()]
        # A group sharing a word with a known one joins it (["delivery", "dispatch"]).
        canonical = next((out[w] for w in words if w in out), words[0] if words else "")
        for word in words:
            out.setdefault(word, canonical)
    return out


def _tokens(text: str, synonyms: dict[str, str]) -> list[str]:
    words = _WORD_OR_HYPHEN.findall(text.lower())
    out = []
    for raw in words:
        word = synonyms.get(raw, raw)
        for part in word.split("-") if word not in synonyms.values() else [word]:
            if part and part not in _STOP and len(part) > 1:
                out.append(synonyms.get(part, part))
    return out


def _texts(brief: Brief) -> dict[str, str]:
    h = brief.hypothesis
    return {
        "change": h.change,
        "title": brief.name,
        "result": h.result,
        "reason": h.reason,
        "audience": f"{h.audience} {brief.audience}",
        "description": brief.description,
    }


def _words(brief: Brief, synonyms: dict[str, str]) -> Counter[str]:
    bag: Counter[str] = Counter()
    for field, weight in _FIELDS:
        for word in _tokens(_texts(brief)[field], synonyms):
            bag[stem(word)] += weight  # type: ignore[assignment]
    return bag


def _grams(brief: Brief, synonyms: dict[str, str]) -> Counter[str]:
    bag: Counter[str] = Counter()
    for field, weight in _FIELDS[:3]:
        for word in _tokens(_texts(brief)[field], synonyms):
            padded = f" {word} "
            for i in range(max(1, len(padded) - 3)):
                bag[padded[i : i + 4]] += weight  # type: ignore[assignment]
    return bag


def _tfidf(bags: Sequence[Counter[str]]) -> list[dict[str, float]]:
    df: Counter[str] = Counter()
    for bag in bags:
        df.update(bag.keys())
    n = len(bags)
    out = []
    for bag in bags:
        vec = {t: math.log1p(c) * math.log((1 + n) / (1 + df[t])) for t, c in bag.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        out.append({t: v / norm for t, v in vec.items()})
    return out


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(t, 0.0) for t, v in a.items())


def _facets(a: Brief, b: Brief) -> float:
    score = 0.0
    if a.surface and a.surface == b.surface:
        score += 0.5
    if a.metrics.primary and b.metrics.primary and a.metrics.primary[0] == b.metrics.primary[0]:
        score += 0.3
    if a.change_type and a.change_type == b.change_type:
        score += 0.2
    return score


def similar(
    brief: Brief,
    records: Iterable[Record],
    *,
    threshold: float = 0.28,
    limit: int = 5,
    synonyms: Iterable[Sequence[str]] = (),
) -> list[Match]:
    """The records most like ``brief`` (itself and its own experiment left out), best first."""
    others = [
        r
        for r in records
        if r.key != brief.key and not (brief.experiment and r.key == brief.experiment)
        and not (brief.experiment and r.brief.experiment == brief.experiment)
    ]  # fmt: skip
    if not others:
        return []
    all_briefs = [brief, *(r.brief for r in others)]
    table = thesaurus(synonyms)
    words = _tfidf([_words(b, table) for b in all_briefs])
    grams = _tfidf([_grams(b, table) for b in all_briefs])
    matches = []
    for i, record in enumerate(others, start=1):
        text = _cosine(words[0], words[i])
        chars = _cosine(grams[0], grams[i])
        facets = _facets(brief, record.brief)
        score = _TEXT_WEIGHT * text + _CHAR_WEIGHT * chars + _FACETS_WEIGHT * facets
        near = score >= threshold
        shared = sorted(
            set(words[0]) & set(words[i]), key=lambda t: -(words[0][t] * words[i][t])
        )[:5]  # fmt: skip
        matches.append(
            Match(
                key=record.key,
                title=record.brief.name or record.key,
                stage=record.stage,
                outcome=record.outcome,
                score=round(score, 4),
                near_duplicate=near,
                failed=near and record.outcome in FAILED,
                shared_terms=tuple(shared),
            )
        )
    matches.sort(key=lambda m: (-m.score, m.key))
    return matches[: max(1, limit)]
