"""``python -m airflow_provider_wfdlq.doctor``."""

import sys

from airflow_provider_wfdlq.doctor.cli import main

sys.exit(main())
