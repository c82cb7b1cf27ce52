"""Sanic's private internals we rely on are all listed, and all still there: a Sanic
upgrade that changes one fails here, naming it, instead of somewhere in a connection."""

from __future__ import annotations

import dataclasses

from sanic.http import Http
from sanic.server.protocols.http_protocol import HttpProtocol

from nn_server.web import sanic_internals
from nn_server.web.connections import Connection, Exchange
from nn_server.web.sanic_internals import HTTP, INTERNALS, PROTOCOL, problem


def test_every_internal_we_use_is_still_there() -> None:
    assert sanic_internals.problems() == []


def test_every_override_of_sanics_connection_classes_is_listed() -> None:
    listed = {(i.owner, i.name) for i in INTERNALS}
    for ours, base, owner in ((Exchange, Http, HTTP), (Connection, HttpProtocol, PROTOCOL)):
        overridden = {name for name in vars(ours)
                      if hasattr(base, name) and not name.startswith("__")}
        assert {(owner, name) for name in overridden} <= listed, ours


def test_a_changed_internal_is_reported_by_name() -> None:
    entry = next(i for i in INTERNALS if i.name == "check_timeouts")
    renamed = dataclasses.replace(entry, name="check_timeouts_v26")
    assert "check_timeouts_v26 (used in connections.Connection" in (problem(renamed) or "")
    moved = dataclasses.replace(entry, parameters=("self", "now"))
    assert "now takes ('self',)" in (problem(moved) or "")
    unset = next(i for i in INTERNALS if i.kind == "instance")
    assert "is no longer set" in (problem(dataclasses.replace(unset, name="gone")) or "")
