r"""The JSON of an export answer: fast, and lenient when the fast decoder refuses a character.

msgspec decodes every page (the tap's speed depends on it), and it refuses a whole body for
one character that is not valid Unicode: a lone surrogate escape (``\ud83d``, half an emoji
cut by some mail client) or an invalid UTF-8 byte, anywhere in a page. Retrying such a page
cannot help: Zendesk sends the same bytes again, and every later run would stop at the same
page. So a body msgspec refuses is decoded again by Python's ``json``, with each invalid byte
kept as a lone surrogate (``surrogateescape``), and every lone surrogate then becomes U+FFFD,
the Unicode replacement character, as any UTF-8 decoder in "replace" mode would do. The
events whose text was repaired are named, so the run can say which.

A body that even the lenient decoder cannot read (truncated, not JSON) raises the fast
decoder's own error: a transient fault of some proxy, which the caller retries.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

#: What a character that is not valid Unicode becomes.
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_fast = msgspec.json.Decoder()


@dataclass(frozen=True)
class Decoded:
    """A decoded body, and what the lenient decoding had to repair (nothing on the fast path)."""

    body: object
    repaired_ids: list[Any] = field(default_factory=list)
    """The ``id`` of each item of the records array whose text held a bad character, in order."""
    repaired: bool = False
    """True when any character, in an item or elsewhere in the body, became U+FFFD."""


def decode_body(content: bytes, records_key: str) -> Decoded:
    """The body's JSON value; a bad character becomes U+FFFD instead of refusing the page.

    Raises ``msgspec.DecodeError`` or ``ValueError`` for a body that is no JSON at all.
    """
    try:
        return Decoded(_fast.decode(content))
    except (msgspec.DecodeError, ValueError) as refused:
        fast_error = refused
    try:
        body = json.loads(content.decode("utf-8", "surrogateescape"), parse_constant=_no_constant)
    except ValueError:
        raise fast_error from None
    items = body.get(records_key) if isinstance(body, dict) else None
    repaired_ids: list[Any] = []
    if isinstance(items, list):
        for position, item in enumerate(items):
            fixed, changed = _repair(item)
            if changed:
                items[position] = fixed
                repaired_ids.append(fixed.get("id") if isinstance(fixed, dict) else None)
    body, changed_elsewhere = _repair(body)
    return Decoded(body, repaired_ids, repaired=bool(repaired_ids) or changed_elsewhere)


def _no_constant(name: str) -> None:
    """NaN and Infinity are no JSON: refused here as msgspec refuses them."""
    msg = f"{name} is not a JSON value"
    raise ValueError(msg)


def _repair(value: Any) -> tuple[Any, bool]:
    """``value`` with every lone surrogate replaced by U+FFFD, and whether any was."""
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value, False
        return _SURROGATE.sub(REPLACEMENT, value), True
    if isinstance(value, list):
        changed = False
        for position, element in enumerate(value):
            fixed, element_changed = _repair(element)
            if element_changed:
                value[position] = fixed
                changed = True
        return value, changed
    if isinstance(value, dict):
        pairs = [(_repair(key), _repair(element)) for key, element in value.items()]
        if not any(key_changed or element_changed for (_, key_changed), (_, element_changed) in pairs):
            return value, False
        return {key: element for (key, _), (element, _) in pairs}, True
    return value, False


def repaired_text_warning(decoded: Decoded) -> str:
    """The one line a run says about repaired text: which events, and what became of them."""
    ids = [str(each) for each in decoded.repaired_ids]
    if not ids:
        where = "in the page's envelope"
    elif len(ids) == 1:
        where = f"in event {ids[0]}"
    else:
        where = f"in events {', '.join(ids[:5])}{', …' if len(ids) > 5 else ''}"
    return (
        f"a page held text that is not valid Unicode (a lone surrogate escape or an invalid UTF-8 byte) {where}; "
        "each bad character was replaced by U+FFFD and the events were exported. Later pages with such text are "
        "decoded the same way without another line."
    )
