"""The streams of the tap: one class per Zendesk incremental export endpoint."""

from __future__ import annotations

from importlib import resources

from singer_sdk.schema.source import SchemaDirectory, StreamSchema

from tap_zendesk_ticket_events.client import ZendeskExportStream

SCHEMAS = SchemaDirectory(resources.files(__package__) / "schemas")


class TicketEventsStream(ZendeskExportStream):
    """Every change made to every ticket (``/api/v2/incremental/ticket_events``)."""

    name = "ticket_events"
    path = "/api/v2/incremental/ticket_events.json"
    records_key = "ticket_events"
    schema = StreamSchema(SCHEMAS)
