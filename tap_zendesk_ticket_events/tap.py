"""The tap: its settings and its streams (the command line's concerns are in ``cli.py``)."""

from __future__ import annotations

import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from jsonschema.validators import validator_for
from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities

from tap_zendesk_ticket_events import scope, streams
from tap_zendesk_ticket_events.auth import build_authenticator
from tap_zendesk_ticket_events.cli import CommandLineTap
from tap_zendesk_ticket_events.client import AUTH_LABELS
from tap_zendesk_ticket_events.inputs import check_state
from tap_zendesk_ticket_events.settings import DEFAULTS, MAX_PAGE_SIZE, Settings, auth_method
from tap_zendesk_ticket_events.state import normalise_bookmarks
from tap_zendesk_ticket_events.throttle import AccountPacer, Throttle

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk.authenticators import APIAuthenticatorBase


def _whole_number(name: str, description: str, *, minimum: int = 1, maximum: int | None = None) -> th.Property[int]:
    """An integer setting with its default from ``settings.DEFAULTS`` (one source for both)."""
    kind = th.IntegerType(minimum=minimum) if maximum is None else th.IntegerType(minimum=minimum, maximum=maximum)
    default = DEFAULTS[name]
    assert isinstance(default, int)
    return th.Property(name, kind, default=default, description=description)


class TapZendeskTicketEvents(CommandLineTap):
    """Singer tap for Zendesk Support's incremental ticket events and ticket metric events exports."""

    name = "tap-zendesk-ticket-events"
    # No BATCH: a batch file is written after the records it holds, so the per-page STATE
    # would run ahead of data a target has not received. No ACTIVATE_VERSION: the stream
    # is incremental, never a full-table replacement.
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        TapCapabilities.TEST,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    config_jsonschema = th.PropertiesList(
        th.Property(
            "subdomain",
            th.StringType,  # no pattern: settings.base_url explains a bad subdomain better than a regex
            description="Zendesk subdomain: 'acme' for https://acme.zendesk.com. Required unless api_url is set.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            description=(
                "Base URL (scheme, host, optional port) replacing https://{subdomain}.zendesk.com: "
                "sandboxes, proxies, the test simulator. Plain http only for loopback hosts."
            ),
        ),
        th.Property(
            "email",
            th.StringType,
            description="Email of the admin user the API token belongs to (API-token auth).",
        ),
        th.Property(
            "api_token",
            th.StringType,
            secret=True,
            requires_properties=["email"],
            description=(
                "Zendesk API token (HTTP Basic as '{email}/token'). Zendesk stops accepting API tokens on 2027-04-30."
            ),
        ),
        th.Property(
            "access_token",
            th.StringType,
            secret=True,
            description=(
                "OAuth access token (sent as 'Authorization: Bearer'). Alone, a fixed token; with "
                "refresh_token, the current access token, refreshed when it expires."
            ),
        ),
        th.Property(
            "refresh_token",
            th.StringType,
            secret=True,
            requires_properties=["client_id", "client_secret"],
            description=(
                "OAuth refresh (with client_id and client_secret): the refresh token of an authorization. The tap "
                "refreshes the access token before it expires and keeps each rotated refresh token in "
                "oauth_token_store. After invalid_grant, set a new one here."
            ),
        ),
        th.Property(
            "client_id",
            th.StringType,
            secret=True,
            requires_properties=["client_secret"],
            description=(
                "Identifier of a confidential Zendesk OAuth client. With client_secret and no refresh_token: OAuth "
                "client credentials (recommended: a new token every run, nothing stored); with refresh_token: OAuth "
                "refresh."
            ),
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            requires_properties=["client_id"],
            description="Secret of that OAuth client (client credentials, or OAuth refresh).",
        ),
        th.Property(
            "oauth_scopes",
            th.StringType,
            default=DEFAULTS["oauth_scopes"],
            description=(
                "OAuth client credentials: the scopes asked for, space-separated as Zendesk takes them. The default "
                "is what every stream's requests need; 'read' covers every read."
            ),
        ),
        th.Property(
            "oauth_token_store",
            th.StringType,
            secret=True,  # a PostgreSQL URL may hold the database's password
            description=(
                "OAuth refresh: where the rotated refresh token and the live access token are kept, shared by every "
                "run using it: a file (mode 0600), or a PostgreSQL URL (postgresql://user@host:5432/db, with the "
                "extra [postgres]) for machines that do not keep their disk. Default: "
                "$MELTANO_PROJECT_ROOT/.meltano/run/tap-zendesk-ticket-events/{account}-{digest}-oauth-token.json "
                "under Meltano, else ~/.config/tap-zendesk-ticket-events/{account}-{digest}-oauth-token.json "
                "(XDG_CONFIG_HOME honoured), one per account address and OAuth client."
            ),
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            required=True,
            description="First run exports events at or after this date-time (ISO 8601; UTC when no offset).",
        ),
        th.Property(
            "end_date",
            th.DateTimeType,
            description="Optional: export only events before this date-time, then stop.",
        ),
        th.Property(
            "include_comment_events",
            th.BooleanType,
            default=DEFAULTS["include_comment_events"],
            description=(
                "Sideload full comments into child_events (include=comment_events). Selecting the "
                "ticket_comments stream sideloads them whatever this says."
            ),
        ),
        th.Property(
            "follow_redactions",
            th.BooleanType,
            default=DEFAULTS["follow_redactions"],
            description=(
                "When Zendesk redacts a comment's text or an attachment, re-read its current content and write "
                "again the ticket_comments row and the ticket_events record that held it, so that a target that "
                "upserts on the primary key keeps none of it (comments requests on the account-wide limit; one "
                "export request per second of redacted audits, unless this run read them after the redaction). "
                "False: no re-reads; what was written before a redaction keeps the erased content in "
                "ticket_comments and ticket_events.child_events (ticket_redactions still lists each redaction)."
            ),
        ),
        th.Property(
            "support_type_scope",
            th.StringType,
            default=DEFAULTS["support_type_scope"],
            allowed_values=list(scope.SCOPES),
            description=(
                "Which tickets' events to export (ticket_events and the streams derived from it): 'all' (every "
                "ticket), 'agent' (Zendesk's own default: tickets handled by an AI agent alone are left out) or "
                "'ai_agent' (only those). Not sent to ticket_metric_events."
            ),
        ),
        _whole_number(
            "page_size",
            f"Events per page (per_page), 1-{MAX_PAGE_SIZE}. Zendesk grows a page to hold a whole second.",
            maximum=MAX_PAGE_SIZE,
        ),
        th.Property(
            "max_requests_per_minute",
            th.IntegerType(minimum=1),
            description=(
                "Optional cap on export requests per minute. Unset, the tap uses the account's own budget, "
                "which Zendesk announces on every export answer (10, or 30 with the High Volume add-on; 10 "
                "until the first answer), and waits when another client has spent the minute. Set it to leave "
                "part of the budget to other integrations on purpose: the tap never exceeds it."
            ),
        ),
        _whole_number("request_timeout", "Seconds to wait for one response before retrying it."),
        _whole_number(
            "progress_interval",
            "Seconds between per-page progress lines (0: one line per page). Start and summary "
            "lines are always written.",
            minimum=0,
        ),
    ).to_dict()

    def __init__(self, *args: Any, validate_config: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, validate_config=validate_config, **kwargs)
        if validate_config:
            # Refuse a bad configuration as a whole before any stream sends a request.
            _ = self.settings

    @cached_property
    def settings(self) -> Settings:
        """The configuration checked as a whole, parsed once for every stream."""
        return Settings.from_config(self.config)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """The SDK's JSON Schema check; an auth group's gap said the tap's way.

        The schema declares ``dependentRequired`` (for Meltano and the Hub), whose SDK message
        ("'email' is a dependency of 'api_token'") says less than the tap's (what to set): when
        those are the schema's only complaints, the tap's auth rule speaks. The SDK has no seam
        between reading and validating the config (covered by tests/test_sdk_hooks.py).
        """
        try:
            return super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError:
            validator = validator_for(self.config_jsonschema)(self.config_jsonschema)
            if all(error.validator == "dependentRequired" for error in validator.iter_errors(dict(self.config))):
                auth_method(self.config)
            raise

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        """Refuse a state that is no Singer state, and turn every bookmark into epoch seconds.

        Normalised here (by ``state.normalise_bookmarks``), before the SDK writes its first
        STATE or compares a bookmark with a record's value.
        """
        check_state(state, "The state")  # the --state file was checked already; a state given in code was not
        super().load_state(state)
        for note in normalise_bookmarks(self.state):
            self.logger.warning("%s", note)

    @cached_property
    def throttle(self) -> Throttle:
        """The one request budget every stream draws on: Zendesk counts them together."""
        return Throttle(self.settings.max_requests_per_minute, log=self.logger)

    @cached_property
    def pacer(self) -> AccountPacer:
        """The account-wide limit, for every request that is not an export (a ticket's comments)."""
        return AccountPacer(log=self.logger)

    @cached_property
    def authenticator(self) -> APIAuthenticatorBase:
        """The one authenticator every stream's requests go through: one OAuth token for all."""
        return build_authenticator(self.settings)

    @override
    def discover_streams(self) -> list[Stream]:
        return [
            streams.TicketEventsStream(self, self),
            streams.TicketMetricEventsStream(self, self),
            streams.TicketFieldHistoryStream(self),
            streams.TicketCommentsStream(self),
            streams.TicketRedactionsStream(self),
        ]

    @override
    def test_connection(self) -> None:
        """Send the one request of ``--test`` and say what answered, within seconds whatever fails.

        The settings become ``Settings.for_connection_test``'s (short timeout, short retries)
        before any stream or authenticator reads them.
        """
        self.settings = self.settings.for_connection_test()
        stream = self.streams["ticket_events"]
        assert isinstance(stream, streams.TicketEventsStream)
        events = stream.test_connection()
        self.logger.info(
            "Connection test passed: %s answered the ticket events export (auth: %s; %s at or after start_date, "
            "support_type_scope=%s). One request sent, no comments sideloaded, nothing written.",
            self.settings.base_url,
            AUTH_LABELS.get(self.settings.auth_method, self.settings.auth_method),
            "1 event" if events == 1 else f"{events} events",
            self.settings.support_type_scope,
        )


if __name__ == "__main__":
    TapZendeskTicketEvents.cli()
