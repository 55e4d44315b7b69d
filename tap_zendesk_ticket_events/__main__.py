"""``python -m tap_zendesk_ticket_events``: the same as the console script."""

from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents

TapZendeskTicketEvents.cli()
