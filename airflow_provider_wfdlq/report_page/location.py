"""Where the page goes, and the address a browser can open it at. Pure string work.

Airflow serves no files of ours, so the link from a task can only point somewhere else:

- a prefix the deployment maps (``[wfdlq] report_url_map``, e.g.
  ``s3://acme-reports/=https://reports.acme.internal/``) becomes that http(s) URL;
- ``s3://`` and ``gs://`` without a mapping become the object's page in the AWS or Google
  Cloud console (open or download it there, signed in);
- a local path becomes a ``file://`` URL: right on the machine that wrote it, but a browser
  does not follow a ``file://`` link from an http(s) page (copy the link instead);
- anything else is given as it is.
"""

from __future__ import annotations

from urllib.parse import quote


def page_path_for(report_path: str) -> str:
    """Next to the JSON-lines report: ``<dir>/<stem>.html`` (the summary's stem)."""
    head, sep, name = report_path.rpartition("/")
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name.rsplit(".", 1)[0] or name
    return f"{head}{sep}{stem}.html"


def parse_url_map(text: str | None) -> list[tuple[str, str]]:
    """``<path prefix>=<url prefix>`` pairs, one per line or separated by commas; the
    longest prefix wins."""
    pairs = []
    for part in (text or "").replace("\n", ",").split(","):
        prefix, sep, url = part.strip().partition("=")
        if sep and prefix.strip() and url.strip():
            pairs.append((prefix.strip(), url.strip()))
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def browsable_url(path: str, url_map: str | None = None) -> str:
    """The address a browser opens the page at (see the module's docstring)."""
    for prefix, url in parse_url_map(url_map):
        if path.startswith(prefix):
            return url + quote(path[len(prefix) :], safe="/")
    scheme, sep, rest = path.partition("://")
    if sep and scheme in ("s3", "s3a") and "/" in rest:
        bucket, key = rest.split("/", 1)
        return (
            f"https://s3.console.aws.amazon.com/s3/object/{quote(bucket)}"
            f"?prefix={quote(key, safe='')}"
        )
    if sep and scheme in ("gs", "gcs") and "/" in rest:
        bucket, key = rest.split("/", 1)
        return (
            "https://console.cloud.google.com/storage/browser/_details/"
            f"{quote(bucket)}/{quote(key, safe='/')}"
        )
    if sep and scheme in ("file", "local"):
        return "file://" + quote("/" + rest.lstrip("/"), safe="/")
    if not sep and path.startswith("/"):
        return "file://" + quote(path, safe="/")
    return path
