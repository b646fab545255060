"""Identifier shapes of the real service and the opaque cursors of this emulator."""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import string

URL_SAFE_ALPHABET = string.ascii_letters + string.digits + "_-"
BASE62_ALPHABET = string.ascii_letters + string.digits

DLQ_ID_PATTERN = re.compile(r"^(\d+)-(\d+)$")

DlqKey = tuple[int, int]
RunKey = tuple[int, str]


def new_workflow_run_id(rng: random.Random) -> str:
    """`wfr_` + 21 url-safe characters, like the nanoid the service uses."""
    return "wfr_" + "".join(rng.choices(URL_SAFE_ALPHABET, k=21))


def new_message_id(rng: random.Random) -> str:
    return "msg_" + "".join(rng.choices(BASE62_ALPHABET, k=40))


def format_dlq_id(key: DlqKey) -> str:
    return f"{key[0]}-{key[1]}"


def parse_dlq_id(dlq_id: str) -> DlqKey | None:
    match = DLQ_ID_PATTERN.match(dlq_id)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


class CursorError(ValueError):
    """A cursor that cannot be used: malformed, for another listing, or stale."""


def encode_cursor(kind: str, epoch: int, position: list[object], issued_ms: int) -> str:
    """Opaque to clients: urlsafe base64 of where the walk stopped."""
    raw = json.dumps({"k": kind, "e": epoch, "p": position, "t": issued_ms}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> tuple[int, list[object], int]:
    """Returns (epoch, position, issued_ms); raises CursorError."""
    found, epoch, position, issued = decode_any_cursor(cursor)
    if found != kind:
        raise CursorError("invalid cursor")
    return epoch, position, issued


def decode_any_cursor(cursor: str) -> tuple[str, int, list[object], int]:
    """Returns (kind, epoch, position, issued_ms) of a cursor of any kind; raises CursorError."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or not isinstance(data.get("k"), str):
            raise CursorError("invalid cursor")
        kind, epoch, position, issued = data["k"], data["e"], data["p"], data["t"]
        if not (isinstance(epoch, int) and isinstance(position, list) and isinstance(issued, int)):
            raise CursorError("invalid cursor")
        return kind, epoch, position, issued
    except (binascii.Error, ValueError, KeyError, UnicodeDecodeError) as error:
        if isinstance(error, CursorError):
            raise
        raise CursorError("invalid cursor") from error
