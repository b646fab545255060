"""One night's results, in the shapes the operators produce, and its report records."""

from __future__ import annotations

from typing import Any

from airflow_provider_wfdlq.recovery.morning import build_morning_report, page_details

SHOP = "https://shop.example.com/api/workflow/checkout"
MAIL = "https://mailer.example.org/api/workflow/onboarding"
HOSTILE_BODY = '<script>alert("pwned")</script> & "quotes"'

PREVIEW = {
    "counts": {"would_resume": 5, "skipped_non_retryable": 1},
    "groups": [
        {"workflow_url": SHOP, "response_status": 500, "entries": 3},
        {"workflow_url": MAIL, "response_status": 503, "entries": 2},
    ],
}
RESUME = {
    "counts": {"resumed": 5, "skipped_non_retryable": 1, "expiring_before_next_run": 1},
    "stopped": "done",
    "report_path": "file:///r/2026-11-29.jsonl",
    "runs": [{"dlq_id": f"100-{i}", "workflow_run_id": f"wfr_{i}"} for i in range(5)],
    "expiring": [
        {"dlq_id": "100-9", "expires_at": 1_796_000_000_000, "why": "skipped_non_retryable"}
    ],
    "safety": {
        "canary": {
            "size": 2,
            "succeeded": 2,
            "success_ratio": 1.0,
            "required": 0.75,
            "passed": True,
        },
        "breaker": {"finished": 3, "failed_again": 1, "failure_ratio": 0.3333},
        "paused": {"key": "airflow-redrive-2026-11-29", "by": "circuit_breaker"},
    },
}
FOLLOW = {
    "followed": 5,
    "counts": {"RUN_SUCCESS": 2, "RUN_FAILED": 1, "RUN_CANCELED": 1},
    "still_running": 1,
    "success_ratio": 0.4,
    "failed": [
        {
            "workflow_run_id": "wfr_3",
            "dlq_id": "200-0",
            "resumed_from": "100-3",
            "workflow_url": MAIL,
        }
    ],
    "running": ["wfr_4"],
    "canceled": ["wfr_2"],
}


def record(dlq_id: str, url: str, status: int, event: str, **extra: Any) -> dict[str, Any]:
    """A line of the JSON-lines report (``Item.record``)."""
    return {
        "event": event,
        "dlq_id": dlq_id,
        "workflow_url": url,
        "workflow_run_id": f"wfr_old_{dlq_id}",
        "created_at": 1_795_900_000_000,
        "response_status": status,
        "failure_function_state": None,
        **extra,
    }


def records() -> list[dict[str, Any]]:
    urls = [SHOP, SHOP, SHOP, MAIL, MAIL]
    out = [
        record(
            f"100-{i}", url, 500 if url == SHOP else 503, "resumed", new_workflow_run_id=f"wfr_{i}"
        )
        for i, url in enumerate(urls)
    ]
    out.append(record("100-9", MAIL, 489, "skipped_non_retryable"))
    out.append({"event": "paused", "flow_control_key": "airflow-redrive-2026-11-29"})
    return out


def summary(**follow_changes: Any) -> dict[str, Any]:
    """The summary file as the report operator writes it."""
    follow = {**FOLLOW, **follow_changes}
    result = build_morning_report(preview=PREVIEW, resume=RESUME, follow=follow).to_json()
    result["details"] = {**page_details(preview=PREVIEW, resume=RESUME, follow=follow)}
    result["details"]["night"] = "2026-11-29"
    return result
