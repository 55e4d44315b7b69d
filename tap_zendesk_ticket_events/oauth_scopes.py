"""Which OAuth scopes the tap asks for with client credentials, and why those.

Zendesk grants a client-credentials token whatever scopes are asked for, and answers 403 to a
request the token's scopes do not cover, so the tap asks for exactly what its requests need:
the narrowest scope of every stream's requests (its export, and any re-read it makes), read
from the table below. ``read`` covers every ``GET``; ``<resource>:read`` one resource.

Every stream reads tickets only: both incremental exports were read with ``tickets:read`` in
the October 2026 recording, and the comments of one ticket (``GET
/api/v2/tickets/{id}/comments``, which re-reads will use) are a tickets resource too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The scope each stream's requests need (tests/test_client_credentials.py checks every
#: stream of the tap is here, and that the simulator serves each with it).
NEEDED: Mapping[str, str] = {
    "ticket_events": "tickets:read",  # GET /api/v2/incremental/ticket_events
    "ticket_metric_events": "tickets:read",  # GET /api/v2/incremental/ticket_metric_events
    "ticket_field_history": "tickets:read",  # derived from the ticket events pages
    "ticket_comments": "tickets:read",  # the ticket events pages; re-reads: GET /api/v2/tickets/{id}/comments
    "ticket_redactions": "tickets:read",  # the ticket events pages; GET /api/v2/tickets/{id}/comments
}
#: What the tap asks for unless ``oauth_scopes`` says otherwise: every scope of the table.
DEFAULT = " ".join(sorted(set(NEEDED.values())))
#: One scope as Zendesk spells them: ``read``, ``write``, ``impersonate``, ``tickets:read``, ``hc:write``...
SCOPE = re.compile(r"^[a-z][a-z_]*(:[a-z_]+)?$")


def parse(value: str) -> tuple[str, ...] | None:
    """The scopes of a space-separated setting; None when one of them is not a scope."""
    scopes = tuple(dict.fromkeys(value.split()))
    if not scopes or not all(SCOPE.match(s) for s in scopes):
        return None
    return scopes


def missing(scopes: tuple[str, ...]) -> list[str]:
    """The needed scopes that ``scopes`` do not cover (``read`` covers every ``<resource>:read``)."""
    needed = sorted(set(NEEDED.values()))
    return [s for s in needed if s not in scopes and not (s.endswith(":read") and "read" in scopes)]
