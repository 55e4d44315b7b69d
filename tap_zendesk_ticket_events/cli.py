"""How a run of the command ends for the person who started it: one line, and an exit code.

A scheduler's log should say what went wrong in one line, not in a traceback: a TapError's
message is the whole story; a closed standard output is the target's failure, not the tap's;
anything else is a fault of the tap or of an answer it did not foresee, and says so, with the
traceback at LOGLEVEL=DEBUG only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING

from singer_sdk.exceptions import ConfigValidationError

from tap_zendesk_ticket_events.errors import TapError

if TYPE_CHECKING:
    from collections.abc import Iterator

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
