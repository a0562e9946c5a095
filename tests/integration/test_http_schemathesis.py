"""Schemathesis generates requests from the ingress's own OpenAPI document and sends them to the app,
served by uvicorn on loopback over PostgreSQL, Redis and a real worker. No request may end in a server
error, and every answer must be one the document describes.

Bounded and deterministic for CI: a fixed number of examples per operation, derandomised. The coverage
phase (boundary values of every parameter and body property, several hundred requests per operation) runs
under the `nightly` marker: `pytest -m nightly tests/integration/test_http_schemathesis.py`.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from customer_updates.http import create_app
from customer_updates.settings import Settings
from tests.conftest import load_examples
from tests.integration.test_http_ingress import LiveServer

MAX_EXAMPLES = 50
TOKEN = base64.b64encode(f"till.mg.road:{hashlib.md5(b'mgroad-secret').hexdigest()}".encode()).decode()


# The coverage phase enumerates boundary values of every body property, several hundred requests per
# operation whatever max_examples says: too slow for every run, so it has a nightly test of its own.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
COVERAGE_ONLY = SchemathesisConfig.from_dict({"phases": {
    "coverage": {"enabled": True}, "examples": {"enabled": False}, "fuzzing": {"enabled": False},
    "stateful": {"enabled": False}}})
# The document does not depend on settings, and making the app connects to nothing.
DOCUMENT = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
coverage_schema = schemathesis.openapi.from_dict(DOCUMENT, config=COVERAGE_ONLY)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          ignored_auth]


@pytest.fixture
def base_url(pg_url, redis_url, start_worker):
    load_examples(pg_url)
    start_worker(pg_url, redis_url)
    # ignored_auth sends wrong credentials with every case: the failed-login limits would answer 429 soon.
    server = LiveServer(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, http_wait_seconds=2,
                                 http_login_failures_per_client="1000000/minute",
                                 http_login_failures_per_username="1000000/minute")).start()
    yield server.url
    server.stop()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_never_meet_a_server_error_and_match_the_document(case, base_url):
    case.call_and_validate(
        base_url=base_url,
        headers={"Authorization": f"Basic {TOKEN}"},
        checks=CHECKS,
    )


@pytest.mark.nightly
@coverage_schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_coverage_phase_meets_no_server_error_and_matches_the_document(case, base_url):
    case.call_and_validate(base_url=base_url, headers={"Authorization": f"Basic {TOKEN}"}, checks=CHECKS)
