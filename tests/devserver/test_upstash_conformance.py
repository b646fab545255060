"""Where the dev server was corrected to match Upstash's published files, and the
hardening of the control API."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_wfdlq.devserver import DevServer
from airflow_provider_wfdlq.devserver.cli import build_parser, main
from tests.devserver.conftest import DLQ

LOGS = "/v2/workflows/logs"
EVENTS = "/v2/workflows/events"


# ------------------------------------------------------------------ flow control


def test_flow_control_state_uses_wait_list_size(server: DevServer, api: httpx.Client) -> None:
    entry = server.control.entries()[0]
    api.post(f"{DLQ}/resume/{entry['dlqId']}", headers={"Upstash-Flow-Control-Key": "k1"})
    state = api.get("/v2/flowControl/k1").json()
    assert state["waitListSize"] == 1
    assert "waitlistSize" not in state


def test_unknown_flow_control_key_is_404(server: DevServer, api: httpx.Client) -> None:
    response = api.get("/v2/flowControl/never-seen")
    assert response.status_code == 404
    assert "error" in response.json()
    assert api.post("/v2/flowControl/never-seen/pause").status_code == 200
    assert api.get("/v2/flowControl/never-seen").json()["isPaused"] is True


def test_seeded_flow_control_keys_are_known(server: DevServer, api: httpx.Client) -> None:
    (entry,) = server.control.seed_entries(flowControlKey="seeded-key")
    assert entry["flowControlKey"] == "seeded-key"
    assert api.get("/v2/flowControl/seeded-key").json()["waitListSize"] == 0


# ------------------------------------------------------------------ run logs & events


def resume_some(server: DevServer, api: httpx.Client, n: int) -> list[dict[str, object]]:
    return [api.post(f"{DLQ}/resume/{e['dlqId']}").json() for e in server.control.entries()[:n]]


def test_logs_accept_documented_filters(server: DevServer, api: httpx.Client) -> None:
    (entry,) = server.control.seed_entries(callerIP="203.0.113.9", flowControlKey="fck")
    for params in (
        {"trimBody": "-1"},
        {"trimBody": "200"},
        {"state": "STEP_FAILED"},
        {"state": "STEP_SUCCESS,STEP_RETRY,STEP_PROGRESS,STEP_CANCELED"},
        {"groupBy": "workflowRunId"},
    ):
        assert api.get(LOGS, params=params).status_code == 200, params
    by_ip = api.get(LOGS, params={"callerIp": "203.0.113.9"}).json()["runs"]
    assert [run["dlqId"] for run in by_ip] == [entry["dlqId"]]
    by_key = api.get(LOGS, params={"flowControlKey": "fck"}).json()["runs"]
    assert [run["workflowRunId"] for run in by_key] == [entry["workflowRunId"]]
    failed = api.get(LOGS, params={"state": "STEP_FAILED"}).json()["runs"]
    assert failed
    assert all(run["workflowState"] == "RUN_FAILED" for run in failed)
    assert api.get(LOGS, params={"state": "STEP_RETRY"}).json()["runs"] == []
    for bad in ({"trimBody": "x"}, {"trimBody": "-2"}, {"state": "STEP_NOPE"}, {"groupBy": "x"}):
        assert api.get(LOGS, params=bad).status_code == 400, bad


def test_events_grouped_by_run_answer_like_logs(server: DevServer, api: httpx.Client) -> None:
    started = resume_some(server, api, 2)
    run_id = str(started[0]["workflowRunId"])
    params = {"groupBy": "workflowRunId", "workflowRunId": run_id}
    events = api.get(EVENTS, params=params).json()
    logs = api.get(LOGS, params={"workflowRunId": run_id}).json()
    assert events == logs
    assert [run["workflowRunId"] for run in events["runs"]] == [run_id]
    page = api.get(EVENTS, params={"groupBy": "workflowRunId"}).json()
    assert len(page["runs"]) == 10
    assert page["cursor"]
    assert api.get(EVENTS).status_code == 400  # event mode (ungrouped) is not emulated


def test_logs_count_is_capped_at_ten(server: DevServer, api: httpx.Client) -> None:
    assert len(api.get(LOGS, params={"count": 5}).json()["runs"]) == 5
    assert len(api.get(LOGS, params={"count": 50}).json()["runs"]) == 10


def test_resumed_runs_carry_caller_ip_and_flow_control_key(
    server: DevServer, api: httpx.Client
) -> None:
    (entry,) = server.control.seed_entries(callerIP="198.51.100.7", flowControlKey="orig")
    (old_run,) = api.get(LOGS, params={"workflowRunId": entry["workflowRunId"]}).json()["runs"]
    assert old_run["workflowRunCallerIp"] == "198.51.100.7"
    assert old_run["flowControlKey"] == "orig"


# ------------------------------------------------------------------ control API hardening


def test_control_refuses_a_cross_site_form_post(server: DevServer) -> None:
    form = httpx.post(f"{server.url}/__dev/reset", data={"seed": "1"})
    assert form.status_code == 415
    assert "application/json" in form.json()["error"]
    plain = httpx.post(
        f"{server.url}/__dev/config",
        content=b'{"success_ratio": 0}',
        headers={"Content-Type": "text/plain"},
    )
    assert plain.status_code == 415
    assert server.control.config()["success_ratio"] == 0.8
    bare_delete = httpx.delete(f"{server.url}/__dev/faults")
    assert bare_delete.status_code == 415


def test_control_accepts_json_or_the_marker_header(server: DevServer) -> None:
    ok = httpx.post(f"{server.url}/__dev/config", json={"success_ratio": 0.5})
    assert ok.status_code == 200
    marked = httpx.delete(f"{server.url}/__dev/actions", headers={"X-Wfdlq-Control": "1"})
    assert marked.status_code == 200
    charset = httpx.post(
        f"{server.url}/__dev/time/unfreeze",
        content=b"",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 200
    assert httpx.get(f"{server.url}/__dev/health").status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example"])
def test_control_refuses_foreign_host_headers(server: DevServer, host: str) -> None:
    for method in ("GET", "POST"):
        response = httpx.request(
            method, f"{server.url}/__dev/health", headers={"Host": host}, json={}
        )
        assert response.status_code == 403
        assert "Host" in response.json()["error"]


@pytest.mark.parametrize("host", ["localhost", "localhost:1234", "127.0.0.1", "[::1]:9"])
def test_control_accepts_loopback_host_headers(server: DevServer, host: str) -> None:
    response = httpx.get(f"{server.url}/__dev/health", headers={"Host": host})
    assert response.status_code == 200


def test_allowed_hosts_extend_the_list() -> None:
    with DevServer(entries=1, allowed_hosts=["devbox.internal"]) as server:
        headers = {"Host": "devbox.internal:8080"}
        assert httpx.get(f"{server.url}/__dev/health", headers=headers).status_code == 200


def test_real_api_is_not_affected_by_the_control_guard(server: DevServer) -> None:
    headers = {"Authorization": f"Bearer {server.token}", "Host": "qstash.example"}
    assert httpx.get(f"{server.url}{DLQ}", headers=headers).status_code == 200


# ------------------------------------------------------------------ CLI flags


def test_cli_flags_for_every_reading() -> None:
    args = build_parser().parse_args(
        [
            "--keep-resumed",
            "--resumed-lag",
            "3",
            "--answer-order",
            "shuffled",
            "--max-ids-per-call",
            "7",
            "--list-order",
            "newest",
            "--stale-cursor-every",
            "3",
            "--frozen-cursor",
            "--rate-limit-reset-unit",
            "ms",
            "--created-at-format",
            "iso",
            "--latency-ms",
            "2.5",
            "--allow-host",
            "devbox",
        ]
    )
    assert args.keep_resumed is True
    assert args.resumed_lag == 3
    assert args.answer_order == "shuffled"
    assert args.max_ids_per_call == 7
    assert args.list_order == "newest"
    assert args.stale_cursor_every == 3
    assert args.frozen_cursor is True
    assert args.rate_limit_reset_unit == "ms"
    assert args.created_at_format == "iso"
    assert args.latency_ms == 2.5
    assert args.allow_host == ["devbox"]


def test_cli_refuses_bad_reading_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--answer-order", "random"]) == 2
    assert "answer_order" in capsys.readouterr().err
