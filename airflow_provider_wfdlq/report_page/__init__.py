"""The morning report as one self-contained HTML page (Airflow-free).

``data`` turns the report files into what the page shows, ``svg`` draws the charts,
``render`` writes the HTML, ``files`` reads and writes the files, ``location`` says where
the page goes and the address a browser opens it at."""

from __future__ import annotations

from airflow_provider_wfdlq.report_page.data import PageData, page_data
from airflow_provider_wfdlq.report_page.files import make_page, write_page
from airflow_provider_wfdlq.report_page.location import browsable_url, page_path_for
from airflow_provider_wfdlq.report_page.render import render

__all__ = [
    "PageData",
    "browsable_url",
    "make_page",
    "page_data",
    "page_path_for",
    "render",
    "write_page",
]
