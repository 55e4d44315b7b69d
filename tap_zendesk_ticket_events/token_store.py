"""The OAuth token store: what outlives every run of the tap, in a file or in PostgreSQL.

Zendesk rotates refresh tokens: each refresh returns a new pair and deletes the old one, so
the newest refresh token exists nowhere but in the answer to the last refresh. This file is
where it is kept, written atomically (temp file, fsync, rename, fsync of the directory)
before the new access token is used, so that no crash can lose it. It also holds the live
access token and its expiry, so that every run sharing the file uses one access token
instead of each refreshing on its own (a refresh deletes the token other runs are using).

An exclusive ``fcntl.flock`` on a sibling ``.lock`` file serialises read-check-refresh-write
between runs. The lock is on a file that is never renamed: a lock on the store itself would
be taken on an inode that the next atomic write replaces. POSIX only (``fcntl``), on a local
filesystem; ``fcntl`` is imported only when a lock is taken, so that API-token users of the
tap are not tied to POSIX.

Nothing here logs or raises with a token in it; the file and its lock are mode 0600.

Machines that do not keep their disk (Kubernetes pods, CI runners, Airflow workers) cannot keep
that file: the same guarantees, across machines, come from ``token_store_pg.PostgresTokenStore``,
chosen by giving ``oauth_token_store`` a PostgreSQL URL. Both are a ``TokenStore``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from tap_zendesk_ticket_events.errors import TapError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from contextlib import AbstractContextManager

logger = logging.getLogger(__name__)

STORE_VERSION = 1
#: How many configured refresh tokens the store remembers having been seeded from: enough
#: to tell a stale configuration (an old .env, another machine's settings) from a new token.
SEEDS_KEPT = 20
PLUGIN_DIR = "tap-zendesk-ticket-events"


def fingerprint(token: str) -> str:
    """A one-way fingerprint of a token, to recognise it later without keeping it."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StoredTokens:
    """What the store holds. ``repr`` shows no token."""

    refresh_token: str = field(repr=False)
    access_token: str | None = field(repr=False)
    expires_at: float | None
    """Epoch seconds when the access token expires; None when nobody said."""
    lifetime: float | None
    """The ``expires_in`` the access token came with, for the refresh margin."""
    seeded_from: tuple[str, ...]
    """Fingerprints of the configured refresh tokens this store started from, newest last."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STORE_VERSION,
            "refresh_token": self.refresh_token,
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "lifetime": self.lifetime,
            "seeded_from_sha256": list(self.seeded_from),
        }

    @classmethod
    def from_json(cls, data: object) -> StoredTokens | None:
        """The stored tokens, or None when the content is not a store this tap wrote."""
        if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
            return None
        refresh = data.get("refresh_token")
        access = data.get("access_token")
        expires_at = data.get("expires_at")
        lifetime = data.get("lifetime")
        seeds = data.get("seeded_from_sha256")
        if not isinstance(refresh, str) or not refresh or not (access is None or isinstance(access, str)):
            return None
        if not all(v is None or isinstance(v, (int, float)) for v in (expires_at, lifetime)):
            return None
        if not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds):
            return None
        return cls(refresh, access or None, expires_at, lifetime, tuple(seeds))


class TokenStore(Protocol):
    """Where the tokens live: a lock shared by every run, and the tokens it guards."""

    @property
    def name(self) -> str:
        """The store for people reading a message: a path, or a URL without its password."""
        ...

    def locked(self) -> AbstractContextManager[None]:
        """Hold the lock every run using this store takes before it may refresh."""
        ...

    def read(self) -> StoredTokens | None:
        """The stored tokens; None when there are none yet (or none this tap wrote)."""
        ...

    def write(self, tokens: StoredTokens) -> None:
        """Replace the stored tokens durably, before anything uses them."""
        ...

    def stamp(self) -> object:
        """A cheap identity of the stored version: it changes when another run writes."""
        ...


@dataclass(frozen=True)
class PostgresLocation:
    """``oauth_token_store`` as a PostgreSQL URL. ``repr`` and ``shown`` carry no password."""

    url: str = field(repr=False)

    @property
    def shown(self) -> str:
        """``postgresql://user@host:port/database``: what messages name (never the password)."""
        parts = urlsplit(self.url)
        user = f"{unquote(parts.username)}@" if parts.username else ""
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"

    @property
    def password(self) -> str | None:
        parts = urlsplit(self.url)
        return unquote(parts.password) if parts.password else None


class FileTokenStore:
    """The store file at ``path`` and its lock file next to it.

    ``private_dir``: the directory is the tap's own (the default location), so it is made
    0700 even when it exists already (Meltano creates ``.meltano/run/<plugin>/`` 0755). A
    path set by hand keeps its directory's mode: that may be a shared one such as /tmp.
    """

    def __init__(self, path: Path, *, private_dir: bool = False) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.private_dir = private_dir

    @property
    def name(self) -> str:
        return str(self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock shared by every run (and every stream) using this store.

        Each call opens its own descriptor: flock locks belong to an open file description,
        so two holders in one process exclude each other just as two processes do. The lock
        goes with the process if it dies, so a killed run never leaves it held.
        """
        try:
            import fcntl  # noqa: PLC0415 - POSIX only, and only needed by OAuth refresh
        except ImportError:
            msg = "OAuth refresh needs a POSIX system (it locks the token store with fcntl.flock)."
            raise TapError(msg) from None
        self._make_parent()
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            msg = f"Cannot open the OAuth token store's lock file {self.lock_path}: {exc.strerror}."
            raise TapError(msg) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("Waiting for another run to finish refreshing the OAuth token (lock %s).", self.lock_path)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def read(self) -> StoredTokens | None:
        """The stored tokens; None when there is no store yet or it is unreadable.

        Safe without the lock: writes replace the file in one rename, so a reader sees the
        old content or the new, never a mix.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            msg = f"Cannot read the OAuth token store {self.path}: {exc.strerror}."
            raise TapError(msg) from None
        try:
            tokens = StoredTokens.from_json(json.loads(text))
        except ValueError:
            tokens = None
        if tokens is None:
            logger.warning("The OAuth token store %s is not one this tap wrote; ignoring its content.", self.path)
        return tokens

    def stamp(self) -> tuple[int, int, int] | None:
        """Identity of the store's current version, to notice cheaply that another run wrote it."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def write(self, tokens: StoredTokens) -> None:
        """Replace the store atomically: a crash leaves the old content or the new, whole."""
        self._make_parent()
        payload = json.dumps(tokens.to_json(), indent=2).encode() + b"\n"
        try:
            # mkstemp creates the file with mode 0600, so the tokens are never readable by others.
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise TapError(self._write_failure(exc)) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise TapError(self._write_failure(exc)) from None
        _fsync_directory(self.path.parent)

    def _write_failure(self, exc: OSError) -> str:
        return (
            f"Cannot save the OAuth token store {self.path} ({exc.strerror}): if a refresh just happened, "
            "its rotated refresh token is lost; fix the file's directory, get a new refresh token "
            "and set 'refresh_token'."
        )

    def _make_parent(self) -> None:
        """Create missing parent directories with mode 0700: they hold credentials."""
        missing = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                msg = f"Cannot create the directory {directory} for the OAuth token store: {exc.strerror}."
                raise TapError(msg) from None
        if self.private_dir and not missing:
            with contextlib.suppress(OSError):  # not ours to change: the file itself is 0600 anyway
                if self.path.parent.stat().st_mode & 0o077:
                    self.path.parent.chmod(0o700)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable: without it a power cut can bring the old file back."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_store_path(base_url: str, environ: Mapping[str, str]) -> Path:
    """Where the store lives when the setting ``oauth_token_store`` is not set.

    Inside the Meltano project (``$MELTANO_PROJECT_ROOT/.meltano/run/...``) when Meltano runs
    the tap, else in the user's config directory. The file is named after the account, so two
    accounts configured in one project or on one machine never share (and clobber) a store.
    """
    name = f"{account_name(base_url)}-oauth-token.json"
    project = environ.get("MELTANO_PROJECT_ROOT")
    if project:
        return Path(project) / ".meltano" / "run" / PLUGIN_DIR / name
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(config_home) / PLUGIN_DIR / name


def account_name(base_url: str) -> str:
    """The subdomain ('acme' for acme.zendesk.com), else the api_url's host and port, file-safe."""
    host = urlsplit(base_url).netloc.lower()
    if host.endswith(".zendesk.com"):
        return host.removesuffix(".zendesk.com")
    return re.sub(r"[^a-z0-9._-]", "-", host) or "zendesk"
