"""The export's bookmarks: read, normalised, checkpointed. The tap's one writer of them.

A bookmark is the epoch second a resumed export starts from, kept in the Singer state under
``bookmarks.<stream>.replication_key_value``. The tap reads it in every form people and other
taps leave there (``normalise_bookmarks``, when the state is loaded), refuses what no reading
makes sense of, keeps the SDK's "starting value" out of every STATE, records the
``support_type_scope`` the bookmark was made with, and moves it after every page
(``ExportState.checkpoint``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from tap_zendesk_ticket_events import scope as scope_rules
from tap_zendesk_ticket_events.dates import epoch_of_iso, iso
from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.pages import REPLICATION_KEY

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from singer_sdk.helpers.types import TapState

    from tap_zendesk_ticket_events.scope import Scope

_NUMBER = re.compile(r"\d+(\.\d*)?")


class StateSink(Protocol):
    """Where STATE messages go: the tap's state writer (it skips a state already written)."""

    def write_state(self, state: TapState) -> None: ...


def epoch_of_bookmark(value: object) -> int | None:
    """Epoch seconds of a bookmark in any reasonable form; None when it is none of them.

    An epoch number (the SDK reads JSON numbers with a fraction as Decimal), a string of one,
    or an ISO date-time: carried over from another tap, or set by hand with ``meltano state
    set``. The tap writes only integers.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)):
        return math.floor(value) if math.isfinite(value) else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return math.floor(Decimal(text))
    return epoch_of_iso(text)


def normalise_bookmarks(state: TapState) -> None:
    """Turn every readable bookmark of a loaded state into epoch seconds, in place.

    Done before the SDK writes its first STATE or compares a bookmark with a record's value:
    a date-time string there would crash that comparison mid-run. What cannot be read is left
    for ``ExportState.bookmark`` to refuse, naming the stream.
    """
    for entry in state.get("bookmarks", {}).values():
        epoch = epoch_of_bookmark(entry.get("replication_key_value"))
        if epoch is not None:
            entry["replication_key_value"] = epoch


class ExportState:
    """One export's entry in the state: its bookmark, its scope, its checkpoints."""

    def __init__(
        self,
        stream: str,
        entry: Callable[[], dict[str, Any]],
        tap_state: Callable[[], TapState],
        sink: StateSink,
        logger: logging.Logger,
    ) -> None:
        """``entry``: the stream's (writable) entry in the state; ``tap_state``: the whole state."""
        self._stream = stream
        self._entry = entry
        self._tap_state = tap_state
        self._sink = sink
        self._logger = logger

    def bookmark(self) -> int | None:
        """The saved bookmark (epoch seconds), None before the first run; refuse garbage.

        ``normalise_bookmarks`` turned every readable one into an integer when the state was
        loaded; what is left is either an integer or something no reading makes sense of.
        """
        value = self._entry().get("replication_key_value")
        bookmark = epoch_of_bookmark(value)
        if bookmark is None and value not in (None, ""):
            msg = (
                f"The state's bookmark for '{self._stream}' is neither epoch seconds nor a date-time: "
                f"{str(value)[:40]!r}; fix or clear the state."
            )
            raise TapError(msg)
        return bookmark

    def begin(self, scope: Scope | None) -> int | None:
        """The bookmark to start from, with the state made ready for this run's STATE messages.

        The SDK parks start_date in the state as a "starting value"; it is no resume point (the
        bookmark is epoch seconds), so it is kept out of every STATE message. With a scope, a run
        whose scope differs from its bookmark's says so once, and the scope is recorded.
        """
        bookmark = self.bookmark()
        entry = self._entry()
        entry.pop("starting_replication_value", None)
        if scope is not None:
            before = scope_rules.bookmark_scope(entry)
            warning = scope_rules.change_warning(before, scope, iso(bookmark) if bookmark is not None else "")
            if warning:
                self._logger.warning("%s: %s", self._stream, warning)
            entry[scope_rules.STATE_KEY] = scope
        return bookmark

    def checkpoint(self, reached: int) -> None:
        """A page's records are all written: the bookmark moves to ``reached``, a STATE follows.

        So a killed backfill loses at most a page.

        Written here whether or not the stream is selected: a stream that runs for its derived
        streams alone (ticket_field_history, ...) keeps its bookmark too. For a selected stream
        the SDK has already moved the bookmark to the same value, record by record.
        """
        entry = self._entry()
        entry["replication_key"] = REPLICATION_KEY
        entry["replication_key_value"] = reached
        self._sink.write_state(self._tap_state())
