"""Read-only checks of what paces a redrive: a flow-control key's state, rate-limit headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from airflow_provider_wfdlq.client import NotFoundError, WFDLQError
from airflow_provider_wfdlq.doctor.report import DIFFERS, OK, UNKNOWN, Check
from airflow_provider_wfdlq.doctor.session import Seen, Session

#: A ``*-RateLimit-Reset`` above this is unix milliseconds (as the client reads it).
MS_THRESHOLD = 1e11
#: Below this, a "reset" cannot be a unix time (2001-09-09): it is a delta in seconds.
UNIX_SECONDS_FLOOR = 1e9


def flow_control_check(session: Session, key: str | None) -> Check:
    if key is None:
        return Check("flow_control", UNKNOWN, "not checked: no --flow-control-key given")
    try:
        state = session.client.flow_control_state(key)
    except NotFoundError:
        return Check(
            "flow_control",
            UNKNOWN,
            f"key {key!r} is unknown to the server (404)",
            fix="a typo, or no run has used the key yet; the overrides' flow_control_key "
            "makes it known",
        )
    except WFDLQError as exc:
        return Check("flow_control", UNKNOWN, f"key {key!r}: {session.text(exc)}")
    if "waitListSize" in state.raw or "waitlistSize" in state.raw:
        paused = ", paused" if state.is_paused else ""
        seen = f"key {key!r}: waitListSize={state.waitlist_size}{paused}"
        return Check("flow_control", OK, seen)
    return Check(
        "flow_control",
        DIFFERS,
        f"key {key!r}: the answer has no waitListSize (fields: {sorted(state.raw)})",
        fix="the engine reads waitListSize to see runs waiting; it will read 0",
    )


def _resets(seen: Iterable[Seen]) -> tuple[list[tuple[str, float]], set[str]]:
    """Every ``*-RateLimit-Reset`` that is a number, and every rate-limit header name."""
    resets: list[tuple[str, float]] = []
    names: set[str] = set()
    for answer in seen:
        for header, text in answer.rate_headers:
            names.add(header.lower())
            if header.lower().endswith("ratelimit-reset"):
                try:
                    resets.append((header, float(text)))
                except ValueError:
                    continue
    return resets, names


def rate_limit_check(seen: Sequence[Seen]) -> Check:
    """What the answers seen so far say of the rate-limit reset's unit."""
    resets, names = _resets(seen)
    if not resets:
        extra = f" (only {', '.join(sorted(names))})" if names else ""
        return Check(
            "rate_limit",
            UNKNOWN,
            f"no *-RateLimit-Reset header in {len(seen)} answers{extra}",
            fix="nothing to set: the client waits out a 429 by its headers, else backs off",
        )
    name, value = max(resets, key=lambda item: item[1])
    if value > MS_THRESHOLD:
        return Check(
            "rate_limit",
            DIFFERS,
            f"{name}: {value:.0f}, unix milliseconds",
            fix="harmless: the client reads a reset above 10^11 as milliseconds",
            reading="reset_ms",
        )
    if value < UNIX_SECONDS_FLOOR:
        return Check(
            "rate_limit",
            DIFFERS,
            f"{name}: {value:g}, seconds to wait rather than a unix time",
            fix="the client would retry a 429 at once and back off; set "
            "pacing.requests_per_second below the plan's limit",
        )
    return Check("rate_limit", OK, f"{name}: {value:.0f}, unix seconds")
