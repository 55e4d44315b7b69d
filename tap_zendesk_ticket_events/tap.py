"""The tap: its settings, its streams, and how failures reach the person running it."""

from __future__ import annotations

import io
import sys
from functools import cached_property
from typing import Any, ClassVar

import click
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities
from singer_sdk.singerlib import Message, SingerMessageType

from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.inputs import InputFileError, Kind, read_input_file
from tap_zendesk_ticket_events.settings import DEFAULTS, MAX_PAGE_SIZE, Settings
from tap_zendesk_ticket_events.streams import TicketEventsStream, TicketMetricEventsStream
from tap_zendesk_ticket_events.throttle import Throttle


class RecordBatchingWriter(MsgSpecWriter):
    """msgspec's writer, flushing stdout at every message but RECORD.

    The SDK's writer flushes after every message: one system call per event. Records are
    written in order before the STATE that covers them and that STATE is flushed, so a
    target never sees a STATE ahead of its records; a crash can only lose records that no
    flushed STATE covers, and those are read again on resume.
    """

    def write_message(self, message: Message) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if message.type != SingerMessageType.RECORD:
            sys.stdout.flush()


class TapZendeskTicketEvents(Tap):
    """Singer tap for Zendesk Support's incremental ticket events and ticket metric events exports."""

    name = "tap-zendesk-ticket-events"
    message_writer_class = RecordBatchingWriter
    # No BATCH: a batch file is written after the records it holds, so the per-page STATE
    # would run ahead of data a target has not received. No ACTIVATE_VERSION: the stream
    # is incremental, never a full-table replacement.
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
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
            description=(
                "OAuth refresh token (with client_id and client_secret): the tap refreshes the access token "
                "before it expires and keeps each rotated refresh token in oauth_token_store. After "
                "invalid_grant, set a new one here."
            ),
        ),
        th.Property(
            "client_id",
            th.StringType,
            secret=True,
            description="Unique identifier of the Zendesk OAuth client the refresh token was issued to.",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            description="Secret of that OAuth client.",
        ),
        th.Property(
            "oauth_token_store",
            th.StringType,
            description=(
                "File (mode 0600) holding the rotated refresh token and the live access token, shared by "
                "every run using it. Default: $MELTANO_PROJECT_ROOT/.meltano/run/tap-zendesk-ticket-events/"
                "{account}-oauth-token.json under Meltano, else ~/.config/tap-zendesk-ticket-events/"
                "{account}-oauth-token.json (XDG_CONFIG_HOME honoured)."
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
            description="Sideload full comments into child_events (include=comment_events).",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
            default=DEFAULTS["page_size"],
            description=f"Events per page (per_page), 1-{MAX_PAGE_SIZE}. Zendesk grows a page to hold a whole second.",
        ),
        th.Property(
            "max_requests_per_minute",
            th.IntegerType(minimum=1),
            default=DEFAULTS["max_requests_per_minute"],
            description=(
                "Request budget per minute (sliding window): 10 for incremental exports, 30 with "
                "the High Volume add-on. Lower it when other integrations share the account's budget."
            ),
        ),
        th.Property(
            "request_timeout",
            th.IntegerType(minimum=1),
            default=DEFAULTS["request_timeout"],
            description="Seconds to wait for one response before retrying it.",
        ),
        th.Property(
            "progress_interval",
            th.IntegerType(minimum=0),
            default=DEFAULTS["progress_interval"],
            description=(
                "Seconds between per-page progress lines (0: one line per page). Start and summary "
                "lines are always written."
            ),
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

    @cached_property
    def throttle(self) -> Throttle:
        """The one request budget every stream draws on: Zendesk counts them together."""
        return Throttle(self.settings.max_requests_per_minute, log=self.logger)

    def discover_streams(self) -> list[Stream]:
        return [TicketEventsStream(self), TicketMetricEventsStream(self)]

    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """Run the tap; a failure a person must act on ends it with one line and exit 1."""
        try:
            super().invoke(*args, **kwargs)
        except ConfigValidationError as exc:
            details = "; ".join(str(error) for error in exc.errors) or str(exc)
            cls.logger.error("Invalid configuration: %s", details)  # noqa: TRY400 - one line, no trace
            sys.exit(1)
        except TapError as exc:
            cls.logger.error("%s", exc)  # noqa: TRY400 - the message is the whole story
            sys.exit(1)

    # The files named on the command line: one line naming the file on any mistake, see inputs.py.

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with --state and --catalog read and checked by this tap."""
        command = super().get_singer_command()
        for param in command.params:
            if param.name in {"state", "catalog"}:
                # click.File would end a missing file with a usage error (exit 2).
                param.type = click.Path()
                param.callback = cls.cb_input_file
        return command

    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> Any:
        """Check each --config file, then let the SDK read and merge them as it does."""
        for path in value:
            if path != "ENV":
                cls.checked_input_file(ctx, path, "config")
        return super().cb_config(ctx, param, value)

    @classmethod
    def cb_input_file(cls, ctx: click.Context, param: click.Parameter, value: str | None) -> io.StringIO | None:
        """The checked text of the --state or --catalog file, as the SDK's invoke reads it."""
        if value is None:
            return None
        kind: Kind = "state" if param.name == "state" else "catalog"
        return io.StringIO(cls.checked_input_file(ctx, value, kind))

    @classmethod
    def checked_input_file(cls, ctx: click.Context, path: str, kind: Kind) -> str:
        """The file's text; a mistake in it ends the run with one ERROR line and exit 1."""
        try:
            return read_input_file(path, kind)
        except InputFileError as exc:
            cls.logger.error("%s", exc)  # noqa: TRY400 - the message is the whole story
            ctx.exit(1)


if __name__ == "__main__":
    TapZendeskTicketEvents.cli()
