"""wfdlq-doctor over real HTTP against the dev server, in each reading."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_wfdlq.devserver import READINGS
from airflow_provider_wfdlq.doctor import cli, main

FAST = ["--probe-interval", "0"]
SECRET = "tok-Wrong-" + "q" * 24


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def doctor(
    server: Any, *args: str, token: str | None = None, stdin: Any = None, url: str | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--url", url or server.url, *args],
        stdin=stdin if stdin is not None else io.StringIO(),
        stdout=out,
        stderr=err,
        environ={"QSTASH_TOKEN": server.token if token is None else token},
    )
    return code, out.getvalue(), err.getvalue()


def world(server: Any, reading: str, entries: int = 50) -> list[str]:
    """A small world in this reading; its dlqIds, oldest first."""
    server.control.reset(entries=entries, config=READINGS[reading])
    return [entry["dlqId"] for entry in server.control.entries()]


def probe_args(server: Any, reading: str) -> list[str]:
    ids = world(server, reading)
    if reading == "reset_ms":
        server.control.add_fault("429", reset_seconds=0)  # so the headers show
    args = ["--probe-resume", ids[0], "--yes", *FAST]
    if reading == "capped":
        args += ["--probe-bulk", ",".join(ids[1:9])]  # 8 ids, the cap is 7
    return args


def resumed(server: Any) -> list[str]:
    return [a["dlqId"] for a in server.control.actions() if a["action"] == "resume"]


#: reading -> (exit code, the check that names it)
EXPECTED: dict[str, tuple[int, str | None]] = {
    "default": (0, None),
    "keep_resumed": (1, "resume_leaves"),
    "lag": (1, "resume_leaves"),
    "newest_first": (0, "list_order"),
    "stale_cursors": (0, "cursor"),
    "frozen_cursor": (1, "cursor"),
    "reset_ms": (0, "rate_limit"),
    "iso_created_at": (0, "resume_answer"),
    "capped": (1, "bulk_cap"),
}


@pytest.mark.parametrize("reading", sorted(EXPECTED))
def test_names_the_reading_and_exits_accordingly(wfdlq_devserver: Any, reading: str) -> None:
    expected_code, check = EXPECTED[reading]
    code, out, _ = doctor(wfdlq_devserver, *probe_args(wfdlq_devserver, reading))
    assert f"\nreading: {reading}\n" in out, out
    assert code == expected_code, out
    assert f"result: {expected_code} " in out

    code, out, _ = doctor(wfdlq_devserver, "--json", *probe_args(wfdlq_devserver, reading))
    report = json.loads(out)
    assert report["readings"] == [reading]
    assert report["exit_code"] == code == expected_code
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["token"] == "ok"
    if check is None:
        assert "differs" not in statuses.values()
    else:
        (named,) = [c for c in report["checks"] if c["reading"] == reading]
        assert named["name"] == check
        assert named["status"] == "differs"
        assert named["fix"]
        assert named["matters"] is bool(expected_code)


def test_default_world_every_read_only_check(wfdlq_devserver: Any) -> None:
    world(wfdlq_devserver, "default")
    code, out, _ = doctor(wfdlq_devserver, "--json")
    assert code == 0
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert [name for name, c in checks.items() if c["status"] == "ok"] == [
        "token",
        "list_page",
        "get_entry",
        "list_order",
        "cursor",
        "run_logs",
    ]
    assert "10 answered and a cursor" in checks["run_logs"]["seen"]
    assert checks["flow_control"]["status"] == checks["rate_limit"]["status"] == "unknown"
    assert resumed(wfdlq_devserver) == []  # read-only: nothing acted on
    assert {r["method"] for r in wfdlq_devserver.control.requests()} == {"GET"}


def test_flow_control_key_state(wfdlq_devserver: Any) -> None:
    world(wfdlq_devserver, "default", entries=20)
    wfdlq_devserver.control.seed_entries(count=1, flowControlKey="night-1")
    code, out, _ = doctor(wfdlq_devserver, "--json", "--flow-control-key", "night-1")
    (check,) = [c for c in json.loads(out)["checks"] if c["name"] == "flow_control"]
    assert code == 0
    assert check["status"] == "ok"
    assert "waitListSize=0" in check["seen"]


def test_small_dlq_leaves_what_it_cannot_see_unknown(wfdlq_devserver: Any) -> None:
    world(wfdlq_devserver, "default", entries=3)
    code, out, _ = doctor(wfdlq_devserver, "--json")
    checks = {c["name"]: c["status"] for c in json.loads(out)["checks"]}
    assert code == 0
    assert checks["cursor"] == "unknown"
    assert checks["list_order"] == "ok"  # within one page


def test_probe_refuses_without_yes_and_without_a_tty(wfdlq_devserver: Any) -> None:
    ids = world(wfdlq_devserver, "default", entries=5)
    wfdlq_devserver.control.clear_requests()
    code, out, err = doctor(wfdlq_devserver, "--probe-resume", ids[0], *FAST)
    assert code == 2
    assert "--yes" in err
    assert "refusing" in err
    assert out == ""
    assert wfdlq_devserver.control.requests() == []  # refused before any request
    code, _, err = doctor(wfdlq_devserver, "--probe-bulk", ",".join(ids[:2]))
    assert code == 2
    assert resumed(wfdlq_devserver) == []


@pytest.mark.parametrize(("answer", "expected"), [("n\n", 2), ("\n", 2), ("y\n", 0)])
def test_probe_asks_on_a_tty(wfdlq_devserver: Any, answer: str, expected: int) -> None:
    ids = world(wfdlq_devserver, "default", entries=20)
    code, _, err = doctor(wfdlq_devserver, "--probe-resume", ids[0], *FAST, stdin=Tty(answer))
    assert "Go on? [y/N]" in err
    assert code == expected
    assert resumed(wfdlq_devserver) == ([ids[0]] if expected == 0 else [])


def test_probe_of_a_missing_entry_resumes_nothing(wfdlq_devserver: Any) -> None:
    ids = world(wfdlq_devserver, "default", entries=5)
    missing = ids[0][:-1] + "9"
    assert missing not in ids
    code, _, err = doctor(wfdlq_devserver, "--probe-resume", missing, "--yes", *FAST)
    assert code == 2
    assert "not in the DLQ" in err
    assert resumed(wfdlq_devserver) == []


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_the_token_never_shows(wfdlq_devserver: Any, fmt: list[str]) -> None:
    ids = world(wfdlq_devserver, "default", entries=20)
    code, out, err = doctor(wfdlq_devserver, *fmt, "--probe-resume", ids[0], "--yes", *FAST)
    assert code == 0
    assert wfdlq_devserver.token not in out + err

    code, out, err = doctor(wfdlq_devserver, *fmt, token=SECRET)
    assert code == 1
    assert SECRET not in out + err
    assert SECRET.lower() not in (out + err).lower()
    assert "401" in out
    assert "qstash-us-east-1.upstash.io" in out  # the fix names the region URLs
    assert "password" in out


@pytest.mark.parametrize(
    "url",
    ["not a url", "ftp://127.0.0.1:8080", "http://qstash.example.com", "https://h/x?token=1"],
)
def test_a_bad_url_is_refused_before_any_request(
    wfdlq_devserver: Any, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    def no_doctor(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a Doctor was built")

    monkeypatch.setattr(cli, "Doctor", no_doctor)
    code, out, err = doctor(wfdlq_devserver, url=url)
    assert code == 2
    assert out == ""
    assert err.startswith("wfdlq-doctor: --url ")
    assert wfdlq_devserver.token not in err


def test_usage_errors(wfdlq_devserver: Any) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main([], stdout=out, stderr=err, environ={}) == 2
    assert "--conn-id" in err.getvalue()
    assert main(["--url", wfdlq_devserver.url], stdout=out, stderr=err, environ={}) == 2
    assert "QSTASH_TOKEN" in err.getvalue()
    both = ["--url", wfdlq_devserver.url, "--conn-id", "x"]
    assert main(both, stdout=out, stderr=io.StringIO(), environ={}) == 2
    code, _, err_text = doctor(wfdlq_devserver, "--probe-bulk", "only-one", "--yes")
    assert code == 2
    assert "two or more" in err_text
    code, _, _ = doctor(wfdlq_devserver, "--page-size", "101")
    assert code == 2


def test_conn_id_reads_the_airflow_connection(wfdlq_devserver: Any, wfdlq_connection: str) -> None:
    world(wfdlq_devserver, "newest_first", entries=30)
    out, err = io.StringIO(), io.StringIO()
    code = main(["--conn-id", wfdlq_connection], stdout=out, stderr=err, environ={})
    assert code == 0, err.getvalue()
    assert "reading: newest_first" in out.getvalue()
    assert wfdlq_devserver.token not in out.getvalue() + err.getvalue()


def test_module_entry_point_refuses_a_probe_without_a_terminal(wfdlq_devserver: Any) -> None:
    ids = world(wfdlq_devserver, "default", entries=20)
    env = {**os.environ, "QSTASH_TOKEN": wfdlq_devserver.token}
    base = [sys.executable, "-m", "airflow_provider_wfdlq.doctor", "--url", wfdlq_devserver.url]
    probe = subprocess.run(
        [*base, "--probe-resume", ids[0]],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert probe.returncode == 2
    assert "--yes" in probe.stderr
    assert resumed(wfdlq_devserver) == []
    read_only = subprocess.run(
        base, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60
    )
    assert read_only.returncode == 0, read_only.stderr
    assert "reading: default" in read_only.stdout
    assert wfdlq_devserver.token not in read_only.stdout + read_only.stderr


def test_importing_the_doctor_does_not_import_airflow() -> None:
    code = "import sys, airflow_provider_wfdlq.doctor; print('airflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
