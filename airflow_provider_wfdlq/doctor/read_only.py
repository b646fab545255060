"""Checks 1-7, the read-only ones: nothing is changed on the account."""

from __future__ import annotations

from airflow_provider_wfdlq.client import AuthError, DLQPage, UnexpectedAnswerError, WFDLQError
from airflow_provider_wfdlq.doctor.limits import flow_control_check, rate_limit_check
from airflow_provider_wfdlq.doctor.listing import CursorWalk, get_check, order_check
from airflow_provider_wfdlq.doctor.report import DIFFERS, OK, UNKNOWN, Check, Report
from airflow_provider_wfdlq.doctor.run_logs import run_logs_check
from airflow_provider_wfdlq.doctor.session import Session

EU_URL = "https://qstash.upstash.io"
EU_URL_REGIONAL = "https://qstash-eu-central-1.upstash.io"
US_URL = "https://qstash-us-east-1.upstash.io"
REGION_DOCS = "https://upstash.com/docs/workflow/howto/multi-region"


class ReadOnlyChecks:
    """Token and region, list and get, order, cursors, run-logs size, flow control, limits."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def run(
        self, *, pages: int = 4, page_size: int = 10, flow_control_key: str | None = None
    ) -> Report:
        report = Report(self.session.base_url)
        try:
            first = self.session.client.list_messages(count=page_size)
        except WFDLQError as exc:
            report.checks.extend(self._not_listed(exc))
            return report
        report.checks.extend(self._listed(first, pages, page_size, flow_control_key))
        return report

    def _listed(
        self, first: DLQPage, pages: int, page_size: int, flow_control_key: str | None
    ) -> list[Check]:
        """The checks once the first page is read: in the order they are shown."""
        base_url = self.session.base_url
        more = "a cursor for more" if first.cursor else "no cursor (the last page)"
        checks = [
            Check("token", OK, f"the token is accepted at {base_url} (GET /v2/workflows/dlq)"),
            Check("list_page", OK, f"{len(first.messages)} entries (count={page_size}), {more}"),
        ]
        walk = CursorWalk(self.session, page_size).walk(first, pages)
        checks.append(get_check(self.session, walk.messages))
        checks.append(order_check(walk.messages, walk.pages))
        checks.append(walk.cursor)
        checks.append(run_logs_check(self.session, walk.messages))
        checks.append(flow_control_check(self.session, flow_control_key))
        checks.append(rate_limit_check(self.session.seen))
        return checks

    def _not_listed(self, exc: WFDLQError) -> list[Check]:
        """The checks when the first list call fails: refused, not parsed, or not reached."""
        if isinstance(exc, AuthError):
            return [self._token_refused(exc)]
        base_url = self.session.base_url
        if isinstance(exc, UnexpectedAnswerError):
            token = Check("token", OK, f"the server at {base_url} answered")
            listing = Check(
                "list_page",
                DIFFERS,
                f"the list answer does not parse: {self.session.text(exc)}",
                fix="the engine cannot list this DLQ; check the URL points at the QStash "
                "API itself, not a proxy or a path under it",
                matters=True,
            )
            return [token, listing, rate_limit_check(self.session.seen)]
        unreached = Check(
            "token",
            UNKNOWN,
            f"listing the DLQ failed: {self.session.text(exc)}",
            fix=f"check the URL ({base_url}) is reachable and is the QStash API: "
            f"EU {EU_URL} (or {EU_URL_REGIONAL}), US {US_URL}",
            matters=True,
        )
        return [unreached, rate_limit_check(self.session.seen)]

    def _token_refused(self, exc: AuthError) -> Check:
        return Check(
            "token",
            DIFFERS,
            f"HTTP {exc.status} from {self.session.base_url}: {self.session.redact(exc.error)}",
            fix="check the token (QSTASH_TOKEN; in an Airflow connection, its password field) "
            "and that the URL is the token's region: EU "
            f"{EU_URL} (or {EU_URL_REGIONAL}), US {US_URL}; each region has its own token "
            f"and its own DLQ ({REGION_DOCS})",
            matters=True,
        )
