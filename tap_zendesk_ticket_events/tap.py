"""The tap: its settings, its streams, and how failures reach the person running it."""

from __future__ import annotations

import contextlib
import io
import signal
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import click
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities
from singer_sdk.singerlib import Message, SingerMessageType
from singer_sdk.tap_base import CliTestOptionValue

from tap_zendesk_ticket_events import scope
from tap_zendesk_ticket_events.cli import one_line_errors
from tap_zendesk_ticket_events.client import AUTH_LABELS, epoch_of_bookmark
from tap_zendesk_ticket_events.inputs import InputFileError, Kind, check_state, read_input_file
from tap_zendesk_ticket_events.settings import DEFAULTS, MAX_PAGE_SIZE, Settings
from tap_zendesk_ticket_events.streams import (
    TicketCommentsStream,
    TicketEventsStream,
    TicketFieldHistoryStream,
    TicketMetricEventsStream,
)
from tap_zendesk_ticket_events.throttle import Throttle

if TYPE_CHECKING:
    from types import FrameType


class RecordBatchingWriter(MsgSpecWriter):
    """msgspec's writer, flushing stdout at every message but RECORD.

    The SDK's writer flushes after every message: one system call per event. Records are
    written in order before the STATE that covers them and that STATE is flushed, so a
    target never sees a STATE ahead of its records; a crash can only lose records that no
    flushed STATE covers, and those are read again on resume.
    """

    def write_message(self, message: Message) -> None:
        data = self.format_message(message)
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(data)
        else:  # a text-only stdout, such as the SDK test suite's capture
            sys.stdout.write(data.decode("utf-8"))
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
            description=(
                "Sideload full comments into child_events (include=comment_events). Selecting the "
                "ticket_comments stream sideloads them whatever this says."
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

    def load_state(self, state: dict[str, Any]) -> None:
        """Refuse a state that is no Singer state, and turn every bookmark into epoch seconds.

        Normalised here, before the SDK writes its first STATE or compares a bookmark with a
        record's value: a date-time string there would crash that comparison mid-run.
        """
        check_state(state, "The state")  # the --state file was checked already; a state given in code was not
        super().load_state(state)
        for entry in self.state.get("bookmarks", {}).values():
            epoch = epoch_of_bookmark(entry.get("replication_key_value"))
            if epoch is not None:
                entry["replication_key_value"] = epoch

    @cached_property
    def throttle(self) -> Throttle:
        """The one request budget every stream draws on: Zendesk counts them together."""
        return Throttle(self.settings.max_requests_per_minute, log=self.logger)

    def discover_streams(self) -> list[Stream]:
        return [
            TicketEventsStream(self),
            TicketMetricEventsStream(self),
            TicketFieldHistoryStream(self),
            TicketCommentsStream(self),
        ]

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Write the last safe STATE, as the SDK does, then exit as killed, not as a success.

        The SDK exits 0 after a SIGTERM or SIGINT, so cron, Airflow or ``meltano run`` would
        report a killed backfill as done. The STATE is still safe: every record's replication
        value is a second from which a resumed export misses nothing.
        """
        with contextlib.suppress(SystemExit):
            super()._handle_termination(signum, frame)  # writes STATE, then exits 0
        name = signal.Signals(signum).name
        self.logger.warning("Stopped by %s: the last STATE written is safe to resume from.", name)
        sys.exit(128 + signum)

    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """Run the tap; any failure ends it with one ERROR line and exit 1 (see cli.py)."""
        with one_line_errors(cls.logger):
            super().invoke(*args, **kwargs)

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """``--test``: one request, no sideload, nothing written; a line saying the connection works.

        The SDK's own test syncs one record of every stream, all forced selected: two requests
        of a ten-per-minute budget (one a full page with comments sideloaded), then a stream
        "stopped" and a failed ``sync_duration`` METRIC although the test passed. ``--test=schema``
        sends no request and stays the SDK's.
        """
        if value != CliTestOptionValue.All.value:
            super().cb_test(ctx, param, value)
            return
        # The SDK's cb_test reads the --config files' merged settings from this parameter too.
        config_input = ctx.params.get("config")
        with one_line_errors(cls.logger):
            tap = cls(
                config=getattr(config_input, "config", None) or {},
                parse_env_config=bool(getattr(config_input, "parse_env", False)),
                validate_config=True,
            )
            tap.test_connection()
        ctx.exit(0)

    def test_connection(self) -> None:
        """Send the one request of ``--test`` and say what answered."""
        stream = self.streams["ticket_events"]
        assert isinstance(stream, TicketEventsStream)
        events = stream.test_connection()
        self.logger.info(
            "Connection test passed: %s answered the ticket events export (auth: %s; %s at or after start_date, "
            "support_type_scope=%s). One request sent, no comments sideloaded, nothing written.",
            self.settings.base_url,
            AUTH_LABELS.get(self.settings.auth_method, self.settings.auth_method),
            "1 event" if events == 1 else f"{events} events",
            self.settings.support_type_scope,
        )

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
