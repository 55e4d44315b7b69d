"""The files named on the command line (--config, --state, --catalog), checked before the SDK reads them.

The SDK reads these files itself and, on a missing file or a JSON error, ends with a long
traceback that does not always name the file. Each is read here first, and any mistake is
one ``InputFileError`` line naming the file (and, for JSON, the line and column). The text
read is then handed to the SDK, which parses it as before.

The config file is read in the ``--config`` option's callback, while click parses the
command line and before ``Tap.invoke`` runs, so its check must happen there; ``--state``
and ``--catalog`` are checked in their callbacks too, so that all three behave alike.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from tap_zendesk_ticket_events.errors import TapError

Kind = Literal["config", "state", "catalog"]

#: What each file should hold, for messages.
EXPECTED: dict[Kind, str] = {
    "config": "one JSON object of settings",
    "state": "the last STATE value a target wrote, one JSON object",
    "catalog": "a Singer catalog, one JSON object",
}


class InputFileError(TapError):
    """A file named on the command line is missing, unreadable, or not a JSON object."""


def read_input_file(path: str, kind: Kind) -> str:
    """The text of the ``--{kind}`` file, once it is known to hold one JSON object.

    ``-`` reads standard input, as click's file options do.
    """
    option = f"--{kind}"
    what = f"The {kind} file {path!r} ({option})"
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"{what} does not exist (looked for {Path(path).absolute()})."
        raise InputFileError(msg) from None
    except IsADirectoryError:
        msg = f"{what} is a directory; name the file holding {EXPECTED[kind]}."
        raise InputFileError(msg) from None
    except UnicodeDecodeError:
        msg = f"{what} is not UTF-8 text; it must hold {EXPECTED[kind]}."
        raise InputFileError(msg) from None
    except OSError as exc:
        msg = f"{what} cannot be read: {exc.strerror or type(exc).__name__}."
        raise InputFileError(msg) from None
    if not text.strip():
        raise InputFileError(f"{what} is empty. {empty_file_advice(kind)}")
    value = parse_json(text, what)
    if not isinstance(value, dict):
        msg = f"{what} holds a JSON {json_type(value)}; it must hold {EXPECTED[kind]}."
        raise InputFileError(msg)
    if kind == "state":
        check_state(value, what)
    return text


def empty_file_advice(kind: Kind) -> str:
    """What an empty file means and what to do, by kind."""
    if kind == "state":
        # Chosen: an error, not "no state". An empty state file is most often what
        # `tail -n 1 state-out.jsonl > state.json` leaves after a run that emitted no
        # STATE: the bookmark it replaced is lost, and a silent restart from start_date
        # would re-export the whole history under a 10-requests-a-minute budget.
        return (
            "It must hold the last STATE value a target wrote (a previous run that emitted no STATE leaves an "
            "empty file): restore the previous state, or run without --state to start again from start_date."
        )
    return f"It must hold {EXPECTED[kind]}."


def parse_json(text: str, what: str) -> Any:
    """Parse ``text``; a JSON error is one line with its line and column."""

    def no_constant(name: str) -> None:
        msg = f"{name} is not a JSON value"
        raise ValueError(msg)

    try:
        # A UTF-8 byte order mark (Windows editors) is accepted, as the SDK accepts it.
        return json.loads(text.removeprefix("\ufeff"), parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        msg = f"{what} is not valid JSON: {json_error(exc)}."
        raise InputFileError(msg) from None
    except ValueError as exc:
        msg = f"{what} is not valid JSON: {exc}."
        raise InputFileError(msg) from None


def json_error(exc: json.JSONDecodeError) -> str:
    """The parser's message at its line and column; a trailing comma is called by its name.

    Python before 3.13 reports a trailing comma as the next token's error ("Expecting
    property name enclosed in double quotes" at the closing brace); the comma is what to fix.
    3.13 and later name it ("Illegal trailing comma before end of object", at the comma):
    both read the same.
    """
    text, pos = exc.doc, exc.pos
    if exc.msg.startswith("Illegal trailing comma before end of "):
        closing = "}" if exc.msg.endswith("object") else "]"
        return f"a trailing comma before {closing!r} at {where(text, pos)}"
    before = text[:pos].rstrip()
    if pos < len(text) and text[pos] in "}]" and before.endswith(","):
        comma = len(before) - 1
        return f"a trailing comma before {text[pos]!r} at {where(text, comma)}"
    return f"{exc.msg} at {where(text, pos)}"


def where(text: str, pos: int) -> str:
    """'line L, column C' of a character position (both from 1, as editors count)."""
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    return f"line {line}, column {column}"


def check_state(state: dict[str, Any], what: str) -> None:
    """Refuse what the SDK would misread: a whole STATE message, or bookmarks of the wrong shape."""
    if state.get("type") == "STATE" and "value" in state:
        # The last line of the tap's own output: its bookmarks would be missed, silently.
        msg = (
            f"{what} holds a whole Singer STATE message; it must hold only its 'value' "
            '(the object with "bookmarks"), as a target writes it.'
        )
        raise InputFileError(msg)
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict) or not all(isinstance(each, dict) for each in bookmarks.values()):
        msg = f"{what} is malformed: 'bookmarks' must be a JSON object holding one object per stream."
        raise InputFileError(msg)


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
