"""Deterministic, realistic DLQ content: the same seed and anchor give the same entries.

Entries look like what a few real apps would leave in the workflow DLQ: several workflow
URLs, the failed step's URL (the workflow endpoint itself, or an external API for a
`context.call` step), a mix of response statuses including 489 "do not retry", labels,
flow-control keys and failure callbacks in each of their four states.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from typing import Any

from airflow_provider_wfdlq.devserver.ids import new_message_id, new_workflow_run_id

DAY_MS = 86_400_000

APPS: list[tuple[str, list[str]]] = [
    (
        "https://shop.example.com/api/workflows/checkout",
        ["reserve-stock", "charge-card", "send-receipt", "notify-warehouse"],
    ),
    ("https://billing.example.com/api/workflow/invoice", ["load-account", "render-pdf", "email"]),
    (
        "https://mailer.example.org/api/workflow/onboarding",
        ["welcome-email", "wait-3-days", "tips-email", "survey"],
    ),
    ("https://etl.example.net/workflows/nightly-sync", ["extract", "transform", "load", "report"]),
    ("https://ai.example.io/api/workflow/summarize", ["fetch-document", "call-llm", "store"]),
]

# Steps made with context.call fail on the external API, not on the workflow endpoint.
EXTERNAL_CALLS = {
    "charge-card": "https://api.stripe.com/v1/payment_intents",
    "call-llm": "https://api.openai.com/v1/chat/completions",
    "email": "https://api.resend.com/emails",
}

# status -> (weight, content type, body, extra response headers)
RESPONSES: dict[int, tuple[int, str, str, dict[str, str]]] = {
    500: (30, "application/json", '{"error":"Internal Server Error"}', {}),
    502: (10, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>", {}),
    503: (14, "application/json", '{"error":"Service Unavailable"}', {"Retry-After": "30"}),
    504: (12, "text/plain", "upstream request timeout", {}),
    404: (8, "application/json", '{"error":"Not Found"}', {}),
    489: (
        8,
        "application/json",
        '{"error":"order already refunded"}',
        {"Upstash-NonRetryable-Error": "true"},
    ),
    429: (8, "application/json", '{"error":"rate limited"}', {"Retry-After": "60"}),
    400: (6, "application/json", '{"error":"invalid payload: missing field \\"email\\""}', {}),
    401: (4, "application/json", '{"error":"invalid api key"}', {}),
}

CALLBACK_STATES = ["CALLBACK_FAIL", "CALLBACK_SUCCESS", "CALLBACK_INPROGRESS", "CALLBACK_CANCELED"]
CALLBACK_WEIGHTS = [35, 35, 15, 15]
CALLER_IPS = ["203.0.113.7", "198.51.100.23", "192.0.2.44", "2001:db8::1f"]
LABELS = ["nightly", "tenant-acme", "tenant-globex", "priority", "backfill"]
FLOW_CONTROL_KEYS = ["stripe-api", "openai-api", "warehouse"]


@dataclass
class SeededMessage:
    """A DLQ message without its dlqId (the world assigns it) plus hidden step facts."""

    message: dict[str, Any]
    failed_step: int
    step_name: str


def callback_info(state: str) -> dict[str, Any]:
    """The failureCallbackInfo object for a state, with a plausible callback response."""
    info: dict[str, Any] = {"state": state}
    if state == "CALLBACK_SUCCESS":
        info.update(responseStatus=200, responseBody='{"ok":true}')
    elif state == "CALLBACK_FAIL":
        info.update(responseStatus=500, responseBody='{"error":"callback handler crashed"}')
    else:
        return info
    info["responseHeaders"] = {"Content-Type": ["application/json"]}
    return info


def realistic_message(rng: random.Random, created_at_ms: int) -> SeededMessage:
    workflow_url, steps = rng.choice(APPS)
    failed_step = rng.randrange(len(steps))
    step_name = steps[failed_step]
    run_id = new_workflow_run_id(rng)
    workflow_created_at = created_at_ms - rng.randint(2_000, 2 * 3_600_000)
    status = rng.choices(list(RESPONSES), weights=[r[0] for r in RESPONSES.values()])[0]
    _, content_type, response_body, extra_headers = RESPONSES[status]
    max_retries = rng.choice([3, 3, 3, 3, 3, 5, 0, 10])
    external = EXTERNAL_CALLS.get(step_name)

    message: dict[str, Any] = {
        "messageId": new_message_id(rng),
        "workflowRunId": run_id,
        "workflowUrl": workflow_url,
        "workflowCreatedAt": workflow_created_at,
        "createdAt": created_at_ms,
        "url": external or workflow_url,
        "method": "POST",
        "header": {
            "Content-Type": ["application/json"],
            "Upstash-Workflow-Runid": [run_id],
            "Upstash-Workflow-Init": ["false"],
            "Upstash-Workflow-Sdk-Version": ["1"],
            "Upstash-Feature-Set": ["LazyFetch,InitialBody"],
            "Upstash-Retries": [str(max_retries)],
        },
        "maxRetries": max_retries,
        "notBefore": 0 if rng.random() < 0.85 else workflow_created_at + 60_000,
        "callerIP": rng.choice(CALLER_IPS),
        "responseStatus": status,
        "responseHeader": {
            "Content-Type": [content_type],
            **{name: [value] for name, value in extra_headers.items()},
        },
    }
    payload = {"step": step_name, "orderId": rng.randint(10_000, 99_999), "attempt": 1}
    if rng.random() < 0.05:
        message["bodyBase64"] = base64.b64encode(rng.randbytes(24)).decode()
    else:
        message["body"] = json.dumps(payload, separators=(",", ":"))
    if rng.random() < 0.03:
        message["responseBodyBase64"] = base64.b64encode(rng.randbytes(16)).decode()
    else:
        message["responseBody"] = response_body
    labels = rng.sample(LABELS, k=rng.choice([0, 0, 1, 1, 1, 2]))
    if labels:
        message["label"] = labels[0]
        message["labels"] = labels
    if rng.random() < 0.3:
        message["flowControlKey"] = rng.choice(FLOW_CONTROL_KEYS)
    if rng.random() < 0.55:
        origin = workflow_url.split("/api/")[0].split("/workflows/")[0]
        message["failureCallback"] = origin + "/api/workflow/failure"
        state = rng.choices(CALLBACK_STATES, weights=CALLBACK_WEIGHTS)[0]
        message["failureCallbackInfo"] = callback_info(state)
    return SeededMessage(message=message, failed_step=failed_step, step_name=step_name)


def seeded_messages(seed: int, count: int, anchor_ms: int) -> list[SeededMessage]:
    """`count` messages created during the 5 days before `anchor_ms`, oldest first."""
    rng = random.Random(seed)
    created = sorted(anchor_ms - rng.randint(60_000, 5 * DAY_MS) for _ in range(count))
    return [realistic_message(rng, created_at) for created_at in created]
