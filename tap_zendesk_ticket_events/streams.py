"""The streams of the tap: one class per Zendesk incremental export endpoint."""

from __future__ import annotations

from importlib import resources
from typing import Any

from singer_sdk.schema.source import SchemaDirectory, StreamSchema

from tap_zendesk_ticket_events.client import ZendeskExportStream
from tap_zendesk_ticket_events.pages import epoch_of_iso

SCHEMAS = SchemaDirectory(resources.files(__package__) / "schemas")


class TicketEventsStream(ZendeskExportStream):
    """Every change made to every ticket (``/api/v2/incremental/ticket_events``)."""

    name = "ticket_events"
    path = "/api/v2/incremental/ticket_events.json"
    records_key = "ticket_events"
    schema = StreamSchema(SCHEMAS)


class TicketMetricEventsStream(ZendeskExportStream):
    """SLA and reply-time measurements (``/api/v2/incremental/ticket_metric_events``).

    Same time-based envelope as ticket events, but an item's time is the ISO ``time`` field,
    not an epoch ``timestamp``.
    """

    name = "ticket_metric_events"
    path = "/api/v2/incremental/ticket_metric_events.json"
    records_key = "ticket_metric_events"
    schema = StreamSchema(SCHEMAS)

    @staticmethod
    def item_timestamp(item: dict[str, Any]) -> int | None:
        value = item.get("time")
        return epoch_of_iso(value) if isinstance(value, str) else None
