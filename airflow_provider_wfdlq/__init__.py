"""Recover failed Upstash Workflow runs from the workflow dead-letter queue, from Airflow."""

__version__ = "0.1.0"
