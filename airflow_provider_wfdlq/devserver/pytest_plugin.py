"""pytest fixtures for the workflow DLQ dev server (registered as the `wfdlq` plugin).

Usage, in any test of a project that has this provider installed::

    def test_recovers_everything(wfdlq_devserver):
        server = wfdlq_devserver                 # started once per session,
        server.control.seed_entries(count=20)    # reset before each test
        ...                                      # talk to server.url with server.token
        resumed = [a["dlqId"] for a in server.control.actions() if a["action"] == "resume"]
        assert len(resumed) == len(set(resumed))

    def test_with_airflow_connection(wfdlq_connection):
        # AIRFLOW_CONN_QSTASH_DEFAULT now points at the dev server
        hook = WorkflowDLQHook(qstash_conn_id=wfdlq_connection)

Fixtures:

* ``wfdlq_devserver_session`` - one ``DevServer`` for the whole session (seed 42,
  150 entries, page cap 50, free loopback port).
* ``wfdlq_devserver`` - the same server, reset before the test to the clean
  deterministic state: same seeded entries, empty request/action logs, no faults,
  clock back on real time, default config.
* ``wfdlq_connection`` - sets ``AIRFLOW_CONN_QSTASH_DEFAULT`` to
  ``{"conn_type": "qstash", "host": <server url>, "password": <token>}`` for the test
  and returns the connection id ``"qstash_default"``.

Importing this plugin imports neither Airflow nor the server stack; the server starts
only when a test asks for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_wfdlq.devserver.runner import DevServer

DEFAULT_SEED = 42
DEFAULT_ENTRIES = 150
CONNECTION_ID = "qstash_default"


@pytest.fixture(scope="session")
def wfdlq_devserver_session() -> Iterator[DevServer]:
    from airflow_provider_wfdlq.devserver.runner import DevServer

    with DevServer(seed=DEFAULT_SEED, entries=DEFAULT_ENTRIES) as server:
        yield server


@pytest.fixture
def wfdlq_devserver(wfdlq_devserver_session: DevServer) -> DevServer:
    wfdlq_devserver_session.control.reset()
    return wfdlq_devserver_session


@pytest.fixture
def wfdlq_connection(wfdlq_devserver: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    conn = {"conn_type": "qstash", "host": wfdlq_devserver.url, "password": wfdlq_devserver.token}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONNECTION_ID.upper()}", json.dumps(conn))
    return CONNECTION_ID
