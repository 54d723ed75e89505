"""URL targeting for experiments (``urlPatterns``) and URL-redirect tests.

A server-side app uses these to decide, per request URL, whether a redirect experiment applies
and where to send the user; the patterns follow GrowthBook's "simple" (wildcards, optional
slashes, query parameters) and "regex" forms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_WILDCARD = "_____"


class _Url:
    """The parts of a URL that targeting compares, normalised the way browsers do."""

    __slots__ = ("fragment", "host", "href", "path", "query", "rest")

    def __init__(self, url: str, base_host: str = "_") -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower() or "https"
        netloc = parts.netloc.lower() if parts.netloc else base_host
        host, _, port = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
        if port and _DEFAULT_PORTS.get(scheme) == port:
            netloc = host
        self.host = netloc
        self.path = parts.path or "/"
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.fragment = f"#{parts.fragment}" if parts.fragment else ""
        query = f"?{parts.query}" if parts.query else ""
        self.rest = f"{self.path}{query}{self.fragment}"
        self.href = f"{scheme}://{netloc}{self.rest}"


def _simple_part(actual: str, pattern: str, is_path: bool) -> bool:
    escaped = re.escape(pattern).replace(_WILDCARD, ".*")
    if is_path:
        escaped = r"/?" + re.sub(r"(^(\\)?/|(\\)?/$)", "", escaped) + r"/?"
    return re.fullmatch(escaped, actual, re.IGNORECASE) is not None


def _simple_match(url: _Url, pattern: str) -> bool:
    # A pattern may leave out the protocol ("example.com/path"); '*' is a wildcard.
    pattern = re.sub(r"^([^:/?]*)\.", r"https://\1.", pattern, count=1).replace("*", _WILDCARD)
    if "://" not in pattern and not pattern.startswith("/"):
        pattern = "/" + pattern
    expected = _Url(pattern, base_host=_WILDCARD)
    checks = [(url.host, expected.host, False), (url.path, expected.path, True)]
    if expected.fragment:
        checks.append((url.fragment, expected.fragment, False))
    checks.extend((url.query.get(k, ""), v, False) for k, v in expected.query.items())
    return all(_simple_part(a, p, is_path) for a, p, is_path in checks)


def _regex_match(url: _Url, pattern: str) -> bool:
    try:
        regex = re.compile(pattern)
    except re.error:
        return False
    return regex.search(url.href) is not None or regex.search(url.rest) is not None


_MATCHERS: dict[str, Callable[[_Url, str], bool]] = {
    "simple": _simple_match,
    "regex": _regex_match,
}


def is_url_targeted(url: str, patterns: Sequence[Any]) -> bool:
    """Whether the URL passes the include/exclude patterns (an exclude match always wins)."""
    if not patterns:
        return False
    try:
        parsed = _Url(url)
    except ValueError:
        return False
    has_include = included = False
    for target in patterns:
        if not isinstance(target, dict):
            continue
        matcher = _MATCHERS.get(str(target.get("type")))
        match = matcher is not None and matcher(parsed, str(target.get("pattern", "")))
        if target.get("include") is False:
            if match:
                return False
        else:
            has_include = True
            included = included or match
    return included or not has_include


def merge_query_strings(current_url: str, redirect_url: str) -> str:
    """The redirect URL plus the current URL's query parameters it does not set itself."""
    try:
        current = urlsplit(current_url)
        target = urlsplit(redirect_url)
    except ValueError:
        return redirect_url
    params = parse_qsl(target.query, keep_blank_values=True)
    present = {k for k, _ in params}
    params += [
        (k, v) for k, v in parse_qsl(current.query, keep_blank_values=True) if k not in present
    ]
    return urlunsplit(target._replace(query=urlencode(params)))
