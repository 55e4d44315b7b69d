"""Epoch seconds and ISO 8601 text: the two ways the API, the state and the logs write a moment."""

from __future__ import annotations

from datetime import UTC, datetime


def epoch_of_iso(text: str) -> int | None:
    """Epoch seconds of an ISO 8601 date or date-time (UTC when naive); None if unparsable."""
    text = text.strip()
    if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not take "Z"
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def iso(epoch: int) -> str:
    """An epoch second as an ISO 8601 UTC string, for people reading logs."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
