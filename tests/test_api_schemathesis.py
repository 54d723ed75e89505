"""Property-based fuzzing of the whole HTTP API from its own ``/openapi.json``: no 5xx, ever.

Schemathesis generates requests (valid and invalid) for every documented operation and sends
them in-process to the ASGI app, authenticated with an admin key. Any 5xx fails the test. The
example count is kept small so the module runs in well under a minute; SQLite only (the
PostgreSQL paths are covered by the other API tests).
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from liftkit.app import create_app
from liftkit.platform import Platform
from liftkit.registry import COLLECTIONS
from liftkit.settings import Settings

#: Examples per operation: enough to find crashes in each, few enough to run in ~30 s.
EXAMPLES = 8


@pytest.fixture
def fuzzed_platform(tmp_path: Path) -> Iterator[Platform]:
    """A bootstrapped platform on SQLite (the conftest ``platform`` runs on PostgreSQL too)."""
    data = tmp_path
    platform = Platform(Settings(data_dir=data, database_url=f"sqlite:///{data / 'registry.db'}"))
    platform.bootstrap()
    try:
        yield platform
    finally:
        platform.close()


def admin_headers(platform: Platform) -> Callable[[], dict[str, str]]:
    """Headers with a live admin key. The fuzzer may revoke keys (``DELETE /keys/{id}``), the
    admin key among them, so a new one is made whenever the last one was revoked."""
    current: list[str] = []

    def headers() -> dict[str, str]:
        if not current or platform.accounts.resolve_key(current[0]) is None:
            secret, _ = platform.accounts.create_key("secret", created_by="fuzz", role="admin")
            current[:] = [secret]
        return {"Authorization": f"Bearer {current[0]}"}

    return headers


#: Objects seeded before fuzzing, so generated requests also reach existing objects and
#: revisions (random keys would only ever find 404s).
SEEDS: dict[str, dict[str, Any]] = {
    "segments": {"sql": "SELECT user_id FROM events"},
    "fact-tables": {"sql": "SELECT user_id, timestamp FROM events"},
    "metrics": {"numerator": {"fact_table": "seed"}},
    "playbooks": {"experiment": "seed"},
}


def seed(platform: Platform) -> dict[str, list[Any]]:
    """Seed every collection (a live version 1 and a draft version 2), a user and some keys;
    return values for the path parameters that name them."""
    for name in COLLECTIONS:
        body = {"key": "seed", **SEEDS.get(name, {})}
        platform.registry.save(name, body, "fuzz")
        platform.registry.draft(name, {**body, "name": "draft"}, "fuzz")
    user = platform.accounts.create_user("seed@example.com", "correct horse", roles={"*": "viewer"})
    key_ids = [
        platform.accounts.create_key("ingest", created_by="fuzz")[1].id,
        platform.accounts.create_key(
            "sdk", created_by="fuzz", project="default", environment="production"
        )[1].id,
    ]
    return {
        "key": ["seed"],
        "version": [1, 2, 3],
        "user_id": [user.id],
        "key_id": key_ids,
        "project": ["default", "*"],
    }


def strategy(operation: Any, known: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    """Valid and invalid requests, plus valid ones aimed at the seeded objects."""
    options = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    aimed = {
        name: st.sampled_from(values)
        for name, values in known.items()
        if f"{{{name}}}" in operation.path
    }
    if aimed:
        options.append(
            st.fixed_dictionaries(aimed).flatmap(
                lambda params: operation.as_strategy(path_parameters=params)
            )
        )
    return st.one_of(options)


def test_no_server_errors(fuzzed_platform: Platform) -> None:
    """Every operation, with valid and invalid requests: any 5xx is a failure.

    Hypothesis runs per operation (rather than through ``schema.parametrize``, whose fixture
    loading does not work with this pytest), and failures are collected so one run reports
    every operation that fails, each with its falsifying request.
    """
    known = seed(fuzzed_platform)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzzed_platform))
    headers = admin_headers(fuzzed_platform)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=strategy(operation, known))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers(), checks=[not_a_server_error])

        try:
            check()
        except Exception as exc:
            notes = "\n".join(getattr(exc, "__notes__", []))  # Hypothesis' falsifying example
            failures.append(f"{operation.label}: {exc!r}\n{notes}")
    assert operations > 100  # every collection's routes, and the rest, were fuzzed
    assert not failures, "\n\n".join(failures)
