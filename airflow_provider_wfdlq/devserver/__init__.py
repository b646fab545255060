"""Local emulator of the Upstash Workflow DLQ API (real HTTP, simulated clock, faults).

Independent of Airflow and of this project's client on purpose: it is what the client
is tested against. Entry points: `DevServer` (in-process), `wfdlq-devserver` (CLI),
the `wfdlq_devserver` / `wfdlq_connection` pytest fixtures.
"""

from airflow_provider_wfdlq.devserver.control_client import DevServerControl, DevServerControlError
from airflow_provider_wfdlq.devserver.readings import READINGS
from airflow_provider_wfdlq.devserver.runner import DevServer
from airflow_provider_wfdlq.devserver.state import DEV_TOKEN

__all__ = ["DEV_TOKEN", "READINGS", "DevServer", "DevServerControl", "DevServerControlError"]
