"""Which tickets the ticket events export covers: Zendesk's ``support_type_scope``.

Zendesk's ticket events export serves agent tickets only unless asked otherwise
(``support_type_scope`` defaults to ``agent``): tickets handled entirely by an AI agent, on by
default in many accounts, are left out silently. A warehouse wants every ticket, so the tap
asks for ``all`` unless told otherwise, and keeps in STATE which scope the bookmark was
made with: a run whose scope differs from its bookmark's says what the warehouse lacks, once,
and how to fill it in. Pure rules, no HTTP and no SDK.
"""

from __future__ import annotations

from typing import Literal

Scope = Literal["all", "agent", "ai_agent"]
SCOPES: tuple[Scope, ...] = ("all", "agent", "ai_agent")
DEFAULT: Scope = "all"
#: What a bookmark written before the setting existed was made with: Zendesk's own default.
LEGACY: Scope = "agent"
#: The STATE key, beside the bookmark of ``ticket_events``.
STATE_KEY = "support_type_scope"

#: The kinds of ticket each scope covers.
COVERS: dict[Scope, frozenset[str]] = {
    "all": frozenset({"agent", "ai_agent"}),
    "agent": frozenset({"agent"}),
    "ai_agent": frozenset({"ai_agent"}),
}
KIND_NAMES = {"agent": "agent tickets", "ai_agent": "AI-agent tickets"}
DESCRIPTIONS: dict[Scope, str] = {
    "all": "every ticket, AI-agent tickets included",
    "agent": "agent tickets only, AI-agent tickets left out",
    "ai_agent": "AI-agent tickets only",
}


def parse(value: object) -> Scope | None:
    """The scope named by ``value``; None when it names none of the three."""
    for scope in SCOPES:
        if value == scope:
            return scope
    return None


def bookmark_scope(stream_state: dict[str, object]) -> Scope | None:
    """The scope the stream's bookmark was made with; None when there is no bookmark yet.

    A bookmark without the key was written before the tap sent the parameter, when Zendesk
    exported agent tickets only. An unknown value is taken the same way: only ``agent`` is
    certain to be covered by it.
    """
    if stream_state.get("replication_key_value") in (None, ""):
        return None
    return parse(stream_state.get(STATE_KEY)) or LEGACY


def change_warning(before: Scope | None, now: Scope, bookmark_iso: str) -> str | None:
    """The one line a run says when its scope differs from its bookmark's; None when it doesn't.

    It names what the history exported so far lacks (the kinds the new scope adds, before the
    bookmark) and what later runs will leave out (the kinds it drops), and how to backfill.
    """
    if before is None or before == now:
        return None
    added = sorted(COVERS[now] - COVERS[before])
    dropped = sorted(COVERS[before] - COVERS[now])
    parts = [f"support_type_scope is {now!r} but the bookmark was made with {before!r}"]
    if added:
        kinds = " and ".join(KIND_NAMES[k] for k in added)
        backfill = "ai_agent" if added == ["ai_agent"] else "agent" if added == ["agent"] else "all"
        parts.append(
            f"events of {kinds} before the bookmark ({bookmark_iso}) were never exported: backfill them with one "
            f"run of support_type_scope={backfill!r}, end_date={bookmark_iso} and no state (docs/streams.md, "
            "'Which tickets')"
        )
    if dropped:
        kinds = " and ".join(KIND_NAMES[k] for k in dropped)
        parts.append(f"from now on, events of {kinds} are no longer exported")
    return "; ".join(parts) + "."
