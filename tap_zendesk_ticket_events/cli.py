"""The command line: what the tap writes on stdout, the files it is given, and how a run ends.

``CommandLineTap`` holds every command-line concern of the tap (``tap.py`` holds its
settings and streams): the message writer, the checks of the ``--config``, ``--state`` and
``--catalog`` files (see ``inputs.py``), ``--test``, the exit after a signal, and the one
ERROR line that ends any failed run. A scheduler's log should say what went wrong in one line,
not in a traceback: a TapError's message is the whole story; a closed standard output is the
target's failure, not the tap's; anything else is a fault of the tap or of an answer it did not
foresee, and says so, with the traceback at LOGLEVEL=DEBUG only.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import io
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import click
from singer_sdk import Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import Message, SingerMessageType
from singer_sdk.tap_base import CliTestOptionValue

from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.inputs import InputFileError, Kind, read_input_file

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

TARGET_STOPPED = (
    "The target stopped reading the tap's output (broken pipe): look at the target's own error, which says why. "
    "Nothing past the last STATE the target saved is lost; the next run resumes from it."
)


@contextlib.contextmanager
def one_line_errors(logger: logging.Logger) -> Iterator[None]:
    """Turn any failure inside into one ERROR line and exit 1."""
    try:
        yield
    except ConfigValidationError as exc:
        details = "; ".join(str(error) for error in exc.errors) or str(exc)
        logger.error("Invalid configuration: %s", details)  # noqa: TRY400 - one line, no trace
        sys.exit(1)
    except TapError as exc:
        logger.error("%s", exc)  # noqa: TRY400 - the message is the whole story
        sys.exit(1)
    except BrokenPipeError:
        _silence_stdout()
        logger.error(TARGET_STOPPED)  # noqa: TRY400 - not the tap's bug: no trace, no "report it"
        sys.exit(1)
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        logger.error(  # noqa: TRY400 - the traceback is for LOGLEVEL=DEBUG only
            "Unexpected error (%s: %s); nothing past the last STATE is lost. Run with LOGLEVEL=DEBUG for "
            "the traceback, and please report it.",
            type(exc).__name__,
            text,
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Traceback of the unexpected error", exc_info=True)
        sys.exit(1)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit finds no broken pipe.

    Without it the interpreter prints "Exception ignored ... BrokenPipeError" on its way out
    (the remedy the Python documentation gives for SIGPIPE).
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class RecordBatchingWriter(MsgSpecWriter):
    """msgspec's writer, flushing stdout at every message but RECORD.

    The SDK's writer flushes after every message: one system call per event. Records are
    written in order before the STATE that covers them and that STATE is flushed, so a
    target never sees a STATE ahead of its records; a crash can only lose records that no
    flushed STATE covers, and those are read again on resume.


    The SDK serializes every message into one shared buffer, which the write then reads. A
    signal that arrives in between (a write blocked on a full pipe runs the handler inside it)
    must not serialize the final STATE into that buffer: Python 3.14 refuses to resize it while
    it is being written (the STATE was lost), and older ones would write a line made of both.
    So the handler, finding a message under way, leaves ``deferred`` for this writer to run as
    soon as that message is out, at a line boundary.
    """

    busy = False
    deferred: Callable[[], None] | None = None

    @override
    def write_message(self, message: Message) -> None:
        self.busy = True
        try:
            data = self.format_message(message)
            buffer = getattr(sys.stdout, "buffer", None)
            if buffer is not None:
                buffer.write(data)
            else:  # a text-only stdout, such as the SDK test suite's capture
                sys.stdout.write(data.decode("utf-8"))
            if message.type != SingerMessageType.RECORD:
                sys.stdout.flush()
        finally:
            self.busy = False
        if self.deferred is not None:
            deferred, self.deferred = self.deferred, None
            deferred()


class CommandLineTap(Tap):
    """A tap's command line: stdout writer, checked input files, ``--test``, signals, one-line errors."""

    message_writer_class = RecordBatchingWriter

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Write the last safe STATE, as the SDK does, then exit as killed, not as a success.

        The SDK exits 0 after a SIGTERM or SIGINT, so cron, Airflow or ``meltano run`` would
        report a killed backfill as done. The STATE is still safe: every record's replication
        value is a second from which a resumed export misses nothing. The SDK has no public
        seam for this (its handler is private): tests/test_sdk_hooks.py and the canary cover it.
        """
        writer = self.message_writer
        if isinstance(writer, RecordBatchingWriter) and writer.busy:  # see RecordBatchingWriter
            writer.deferred = functools.partial(self._handle_termination, signum, None)
            return
        with contextlib.suppress(SystemExit):
            super()._handle_termination(signum, frame)  # writes STATE, then exits 0
        name = signal.Signals(signum).name
        self.logger.warning("Stopped by %s: the last STATE written is safe to resume from.", name)
        sys.exit(128 + signum)

    @classmethod
    @override
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """Run the tap; any failure ends it with one ERROR line and exit 1 (see cli.py)."""
        with one_line_errors(cls.logger):
            super().invoke(*args, **kwargs)

    @classmethod
    @override
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

    @abc.abstractmethod
    def test_connection(self) -> None:
        """Send the one request of ``--test`` and say what answered (the tap's own)."""

    # The files named on the command line: one line naming the file on any mistake, see inputs.py.

    @classmethod
    @override
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
    @override
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
