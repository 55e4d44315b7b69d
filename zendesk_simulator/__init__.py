"""A local simulator of Zendesk's incremental exports, for the tap's tests, demo and benchmarks.

Not part of the tap (the wheel ships ``tap_zendesk_ticket_events`` only). Split by concern:

- ``envelopes``: the ``Simulator`` state, which page the live API would answer, and its dialects;
- ``data``: realistic events in the documented, recorded and open-ended shapes;
- ``faults``: injected faults and the requests-per-minute budget;
- ``oauth``: the token endpoint with rotating refresh tokens;
- ``redactions``: comment and attachment redactions, and the ticket comments endpoint;
- ``server``: the HTTP server, on loopback only, and its handler.

Run it alone with ``python -m zendesk_simulator --help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zendesk_simulator import envelopes, faults, oauth, server
from zendesk_simulator.data import (
    event_second,
    make_events,
    make_metric_events,
    make_open_ended_events,
    make_recorded_events,
    metric_epoch,
    pick_ai_agent_tickets,
    undocumented_children,
)
from zendesk_simulator.envelopes import (
    ACCESS_TOKEN,
    API_TOKEN,
    DEFAULT_SCOPE,
    EMAIL,
    EXPORT_PATHS,
    PATH_KIND,
    SCOPES,
    Page,
    Request,
    Simulator,
    render,
)
from zendesk_simulator.faults import FAULTS, STATUS_TEXT
from zendesk_simulator.oauth import CLIENT_ID, CLIENT_SECRET, INVALID_TOKEN, OAUTH_TOKEN_PATH, OAuthServer
from zendesk_simulator.redactions import BLOCK, Redaction, Redactions, attachment
from zendesk_simulator.server import Handler, SimulatorServer

if TYPE_CHECKING:
    from types import ModuleType

#: The modules that read ``time``: a test's virtual clock is installed into each of them.
CLOCKED: tuple[ModuleType, ...] = (envelopes, faults, oauth, server)

__all__ = [
    "ACCESS_TOKEN",
    "API_TOKEN",
    "BLOCK",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CLOCKED",
    "DEFAULT_SCOPE",
    "EMAIL",
    "EXPORT_PATHS",
    "FAULTS",
    "INVALID_TOKEN",
    "OAUTH_TOKEN_PATH",
    "PATH_KIND",
    "SCOPES",
    "STATUS_TEXT",
    "Handler",
    "OAuthServer",
    "Page",
    "Redaction",
    "Redactions",
    "Request",
    "Simulator",
    "SimulatorServer",
    "attachment",
    "event_second",
    "make_events",
    "make_metric_events",
    "make_open_ended_events",
    "make_recorded_events",
    "metric_epoch",
    "pick_ai_agent_tickets",
    "render",
    "undocumented_children",
]
