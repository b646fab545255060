"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_wfdlq import __version__
from airflow_provider_wfdlq.connection_form import provider_connection_type


def get_provider_info() -> dict[str, Any]:
    """Describe this provider; ``package-name`` must equal the distribution name."""
    return {
        "package-name": "airflow-provider-wfdlq",
        "name": "Upstash Workflow DLQ",
        "description": "Recover failed Upstash Workflow runs from the workflow dead-letter queue.",
        "versions": [__version__],
        "connection-types": [provider_connection_type()],
        "hooks": [
            {
                "integration-name": "Upstash Workflow DLQ",
                "python-modules": ["airflow_provider_wfdlq.hooks.dlq"],
            }
        ],
        "operators": [
            {
                "integration-name": "Upstash Workflow DLQ",
                "python-modules": [
                    "airflow_provider_wfdlq.operators.dlq",
                    "airflow_provider_wfdlq.operators.housekeeping",
                    "airflow_provider_wfdlq.operators.report",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Upstash Workflow DLQ",
                "python-modules": [
                    "airflow_provider_wfdlq.sensors.dlq",
                    "airflow_provider_wfdlq.sensors.runs",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Upstash Workflow DLQ",
                "python-modules": [
                    "airflow_provider_wfdlq.triggers.dlq",
                    "airflow_provider_wfdlq.triggers.runs",
                ],
            }
        ],
        "extra-links": ["airflow_provider_wfdlq.links.DLQRecoveryReportLink"],
        "integrations": [
            {
                "integration-name": "Upstash Workflow DLQ",
                "external-doc-url": "https://upstash.com/docs/workflow/howto/failures",
                "tags": ["service"],
            }
        ],
    }
