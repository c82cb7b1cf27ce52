"""Fuzzing the API from its own OpenAPI document with schemathesis: every operation, valid
and invalid inputs, a fixed seed and a bounded number of cases. No answer may be a 5xx,
and every answer must match the document (status, content type, body schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from nn_server.networks import load_registry
from nn_server.web import openapi
from tests.conftest import AUTH_HEADER, LiveServer, start_server

REGISTRY = load_registry()

SCHEMA = schemathesis.openapi.from_dict(openapi.document(REGISTRY.values()))
CASES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[LiveServer]:
    """A server of its own: the fuzzer trains it and serves versions."""
    with start_server("-d", "127.0.0.1:0", env={"NN_ACCESS_LOG": "0"}) as live:
        yield live


@SCHEMA.parametrize()
@settings(max_examples=CASES_PER_OPERATION, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_holds_to_its_document(case: schemathesis.Case, fuzzed: LiveServer) -> None:
    # Every other check runs (no 5xx; documented statuses, content types, headers and bodies;
    # schema-invalid requests refused). Not "schema-valid requests are accepted": a schema
    # can say "a base64 string", not "a picture of a digit", so a random valid string is
    # rightly refused.
    case.call_and_validate(base_url=fuzzed.url, headers={"Authorization": AUTH_HEADER},
                           excluded_checks=[positive_data_acceptance])
