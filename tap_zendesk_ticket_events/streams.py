"""The streams of the tap: one class per Zendesk incremental export endpoint."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from singer_sdk.schema.source import SchemaDirectory, StreamSchema

from tap_zendesk_ticket_events.client import ZendeskExportStream

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

SCHEMAS = SchemaDirectory(resources.files(__package__) / "schemas")


class TicketEventsStream(ZendeskExportStream):
    """Every change made to every ticket (``/api/v2/incremental/ticket_events``)."""

    name = "ticket_events"
    path = "/api/v2/incremental/ticket_events.json"
    records_key = "ticket_events"
    schema = StreamSchema(SCHEMAS)
    sideloads_comments = True
    _via_object_logged = False

    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any]:  # noqa: ARG002
        """Keep top-level ``via`` a string, as the schema declares and strict loaders need.

        Every recorded event has a display string there; an object (seen only inside
        sideloaded comments) would make PipelineWise-family targets fail on the column type,
        so it is sent as its JSON text, and said once per run.
        """
        via = row.get("via")
        if via is not None and not isinstance(via, str):
            row["via"] = json.dumps(via, separators=(",", ":"), ensure_ascii=False)
            if not self._via_object_logged:
                self._via_object_logged = True
                self.logger.info(
                    "An event's top-level 'via' is an object; it is emitted as JSON text (event %s).", row.get("id")
                )
        return row


class TicketMetricEventsStream(ZendeskExportStream):
    """SLA and reply-time measurements (``/api/v2/incremental/ticket_metric_events``).

    Same time-based envelope as ticket events; an item's second is its ISO ``time`` (see
    ``pages.item_second``).
    """

    name = "ticket_metric_events"
    path = "/api/v2/incremental/ticket_metric_events.json"
    records_key = "ticket_metric_events"
    schema = StreamSchema(SCHEMAS)
