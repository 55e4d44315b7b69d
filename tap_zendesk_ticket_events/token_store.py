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


class UnreadableStore(ValueError):
    """The store's content is not one this tap can use; the message says what is wrong."""


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

    def to_json(self, owner: StoreOwner | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": STORE_VERSION,
            "refresh_token": self.refresh_token,
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "lifetime": self.lifetime,
            "seeded_from_sha256": list(self.seeded_from),
        }
        if owner is not None:
            data.update(account=owner.account, client_sha256=owner.client_sha256)
        return data

    @classmethod
    def from_json(cls, data: object) -> StoredTokens:
        """The stored tokens; UnreadableStore saying what is wrong when this tap cannot use them.

        A store of a newer version is refused, never read as far as it looks familiar: writing
        it back in this version's shape would drop what the newer tap relies on.
        """
        if not isinstance(data, dict):
            raise UnreadableStore("it is not a JSON object")
        version = data.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and version > STORE_VERSION:
            msg = (
                f"it is of version {version}, written by a newer release of the tap (this one reads "
                f"version {STORE_VERSION}): upgrade the tap again, or move the file away"
            )
            raise UnreadableStore(msg)
        if version != STORE_VERSION:
            raise UnreadableStore(f"its 'version' is {_shown(version)}, not {STORE_VERSION}")
        refresh = data.get("refresh_token")
        access = data.get("access_token")
        if not isinstance(refresh, str) or not refresh:
            raise UnreadableStore("it holds no 'refresh_token' string")
        if not (access is None or isinstance(access, str)):
            raise UnreadableStore("its 'access_token' is not a string")
        for name in ("expires_at", "lifetime"):
            value = data.get(name)
            if not (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))):
                raise UnreadableStore(f"its {name!r} is {_shown(value)}, not a number")
        seeds = data.get("seeded_from_sha256")
        if not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds):
            raise UnreadableStore("its 'seeded_from_sha256' is not a list of strings")
        return cls(refresh, access or None, data.get("expires_at"), data.get("lifetime"), tuple(seeds))


def _shown(value: object) -> str:
    """A value of the store named in a message: its JSON type, and the value for short non-strings.

    A string is never quoted: a hand edit could have put a token into any field.
    """
    if isinstance(value, str):
        return "a string"
    return json.dumps(value)[:20]


@dataclass(frozen=True)
class StoreOwner:
    """Whose tokens a store holds: the account's whole address and a fingerprint of the OAuth client.

    Written into the file, so that a store renamed or pointed at by another configuration is
    still recognised as another account's or client's (refresh tokens belong to one client).
    """

    account: str
    client_sha256: str

    @classmethod
    def of(cls, base_url: str, client_id: str) -> StoreOwner:
        return cls(account_address(base_url), fingerprint(client_id))


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

    def ready_to_save(self) -> AbstractContextManager[None]:
        """Prove, before a refresh, that the store can take its answer; hold that until ``write``.

        A refresh rotates the grant at Zendesk: an answer the store then fails to keep is a
        grant lost. Whatever can fail (space, a read-only or forbidden directory, a lost
        database) must fail here, before the token request.
        """
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


@dataclass(frozen=True)
class LegacyFile:
    """A store file named the way releases before 0.x named it (after the host only), to take over.

    ``seed``: the fingerprint of the configured refresh token. The old name was shared by every
    OAuth client and every account behind one host, so the old file is taken over only by a
    configuration whose refresh token it started from (or holds).
    """

    path: Path
    seed: str


#: What a refresh reserves in the store's directory before it asks Zendesk: far more than a
#: store file takes (about 2 KB with every seed kept), so that the answer fits in space
#: already allocated.
RESERVED_BYTES = 16384


class FileTokenStore:
    """The store file at ``path`` and its lock file next to it.

    ``private_dir``: the directory is the tap's own (the default location), so it is made
    0700 even when it exists already (Meltano creates ``.meltano/run/<plugin>/`` 0755). A
    path set by hand keeps its directory's mode: that may be a shared one such as /tmp.

    ``path`` may be a symlink (onto a mounted volume, say): the store is its target, written
    in the target's directory, and the link stays a link. The lock file sits next to the
    target too, so that two links to one file share one lock.
    """

    def __init__(
        self,
        path: Path,
        *,
        private_dir: bool = False,
        owner: StoreOwner | None = None,
        legacy: LegacyFile | None = None,
    ) -> None:
        self.path = path
        self.private_dir = private_dir
        self.owner = owner
        self.legacy = legacy
        self._reserved: tuple[int, str] | None = None
        self.taken_over_from: Path | None = None
        """The file named the old way this run took the store over from, if it did."""

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def real_path(self) -> Path:
        """The file the store is: ``path`` with every symlink followed (the target may not exist yet)."""
        return Path(os.path.realpath(self.path))

    @property
    def lock_path(self) -> Path:
        real = self.real_path
        return real.with_name(real.name + ".lock")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock shared by every run (and every stream) using this store.

        Each call opens its own descriptor: flock locks belong to an open file description,
        so two holders in one process exclude each other just as two processes do. The lock
        goes with the process if it dies, so a killed run never leaves it held.
        """
        self._make_parents(self.real_path.parent)
        with _flock(self.lock_path), self._legacy_locked():
            yield

    @contextlib.contextmanager
    def _legacy_locked(self) -> Iterator[None]:
        """While a file named the old way exists, hold its lock too: runs of an older release take it."""
        legacy = self.legacy
        if legacy is None or self.real_path.exists() or not legacy.path.exists():
            yield
            return
        with _flock(legacy.path.with_name(legacy.path.name + ".lock")):
            yield

    def read(self) -> StoredTokens | None:
        """The stored tokens; None when there is no store yet.

        A file this tap cannot use (unreadable, malformed, of another version, another
        account's or client's) ends the run with one line and is left as it is: writing over
        it would lose the refresh token it may hold, the only one Zendesk still accepts.
        Safe without the lock: writes replace the file in one rename, so a reader sees the
        old content or the new, never a mix.
        """
        found = self._load(self.real_path, self.name)
        if found is None and self.legacy is not None:
            return self._take_over(self.legacy)
        return found

    def _load(self, path: Path, shown: str) -> StoredTokens | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise TapError(self._unusable(shown, f"it cannot be read ({reason})")) from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise TapError(self._unusable(shown, f"it is not valid JSON{where}")) from None
        try:
            tokens = StoredTokens.from_json(data)
        except UnreadableStore as exc:
            raise TapError(self._unusable(shown, str(exc))) from None
        self._check_owner(data, shown)
        return tokens

    def _unusable(self, shown: str, what: str) -> str:
        return (
            f"The OAuth token store {shown} cannot be used: {what}. It is left as it is and no token was "
            "requested: repair it (it may hold the only refresh token Zendesk still accepts), or move it away "
            "to start again from the configured 'refresh_token'."
        )

    def _check_owner(self, data: dict[str, Any], shown: str) -> None:
        """Refuse a store another account or OAuth client wrote (a file copied, renamed or shared)."""
        if self.owner is None:
            return
        account, client = data.get("account"), data.get("client_sha256")
        if account is not None and account != self.owner.account:
            what = f"it belongs to the account {str(account)[:100]}, not {self.owner.account}"
        elif client is not None and client != self.owner.client_sha256:
            what = "it belongs to another OAuth client (its 'client_sha256' is not that of 'client_id')"
        else:
            return
        msg = (
            f"The OAuth token store {shown} cannot be used: {what}. It is left as it is and no token was "
            "requested: give this configuration a store of its own (leave 'oauth_token_store' unset for "
            "the default, named after the account and the OAuth client)."
        )
        raise TapError(msg)

    def _take_over(self, legacy: LegacyFile) -> StoredTokens | None:
        """Move a store named the old way to this name: written here first, the old file removed after."""
        shown = f"{legacy.path} (named the way older releases named it)"
        tokens = self._load(legacy.path, shown)
        if tokens is None:
            return None
        if legacy.seed not in tokens.seeded_from and fingerprint(tokens.refresh_token) != legacy.seed:
            logger.info(
                "Leaving the OAuth token store %s as it is: it did not start from the configured 'refresh_token' "
                "(another OAuth client's or account's, which shared that name in older releases).",
                legacy.path,
            )
            return None
        self.write(tokens)
        self.taken_over_from = legacy.path
        with contextlib.suppress(FileNotFoundError):
            legacy.path.unlink()
        _fsync_directory(legacy.path.parent)
        logger.info("Took over the OAuth token store %s as %s (named for account and client).", legacy.path, self.path)
        return tokens

    def stamp(self) -> tuple[int, int, int] | None:
        """Identity of the store's current version, to notice cheaply that another run wrote it."""
        try:
            info = self.real_path.stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    @contextlib.contextmanager
    def ready_to_save(self) -> Iterator[None]:
        """Create and fill the temporary file the answer will go into, before the refresh.

        The bytes are written and synced, so the space is allocated: a full disk, a read-only
        or forbidden directory fails here, with no token requested. ``write`` then overwrites
        those bytes in place (no new space needed) and renames the file over the store.
        """
        real = self.real_path
        self._make_parents(real.parent)
        try:
            size = max(RESERVED_BYTES, 2 * real.stat().st_size)
        except OSError:
            size = RESERVED_BYTES
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
        except OSError as exc:
            raise TapError(self._cannot_prepare(exc)) from None
        try:
            os.write(fd, b" " * size)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise TapError(self._cannot_prepare(exc)) from None
        self._reserved = (fd, temp)
        try:
            yield
        finally:
            if self._reserved is not None:
                self._reserved = None
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(temp)

    def _cannot_prepare(self, exc: OSError) -> str:
        return (
            f"Cannot save to the OAuth token store {self.name} ({exc.strerror}), so no token was requested "
            f"and the grant is intact: make room in, or allow writing to, {self.real_path.parent}, then run again."
        )

    def write(self, tokens: StoredTokens) -> None:
        """Replace the store atomically: a crash leaves the old content or the new, whole."""
        real = self.real_path
        payload = json.dumps(tokens.to_json(self.owner), indent=2).encode() + b"\n"
        reserved, self._reserved = self._reserved, None
        if reserved is not None:  # after a refresh: the answer goes into the space proved free
            fd, temp = reserved
            lost = True
        else:
            lost = False
            self._make_parents(real.parent)
            try:
                # mkstemp creates the file with mode 0600, so the tokens are never readable by others.
                fd, temp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
            except OSError as exc:
                raise TapError(self._write_failure(exc, lost=lost)) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.seek(0)
                handle.write(payload)
                handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, real)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise TapError(self._write_failure(exc, lost=lost)) from None
        _fsync_directory(real.parent)

    def _write_failure(self, exc: OSError, *, lost: bool) -> str:
        if lost:
            return (
                f"Cannot save the OAuth token store {self.name} ({exc.strerror}): the refresh that just happened "
                "rotated the refresh token, and the new one is lost; fix the file's directory, authorize the "
                "OAuth client again and set 'refresh_token'."
            )
        return (
            f"Cannot save the OAuth token store {self.name} ({exc.strerror}): no token was requested, so the grant "
            f"is intact; make room in, or allow writing to, {self.real_path.parent}, then run again."
        )

    def _make_parents(self, directory: Path) -> None:
        """Create missing parent directories with mode 0700: they hold credentials."""
        missing = [p for p in (directory, *directory.parents) if not p.exists()]
        for each in reversed(missing):
            try:
                each.mkdir(mode=0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                msg = f"Cannot create the directory {each} for the OAuth token store: {exc.strerror}."
                raise TapError(msg) from None
        if self.private_dir and not missing and directory == self.path.parent:
            with contextlib.suppress(OSError):  # not ours to change: the file itself is 0600 anyway
                if directory.stat().st_mode & 0o077:
                    directory.chmod(0o700)


@contextlib.contextmanager
def _flock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path``, waiting (and saying so) while another run holds it.

    A lock file that exists but cannot be opened for writing (a read-only volume, a directory
    the run may not write) is locked through a read-only descriptor: flock does not care, and
    the run then fails on what it cannot write, naming the store, before any token request.
    """
    try:
        import fcntl  # noqa: PLC0415 - POSIX only, and only needed by OAuth refresh
    except ImportError:
        msg = "OAuth refresh needs a POSIX system (it locks the token store with fcntl.flock)."
        raise TapError(msg) from None
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        try:
            fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            msg = f"Cannot open the OAuth token store's lock file {lock_path}: {exc.strerror}."
            raise TapError(msg) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("Waiting for another run to finish refreshing the OAuth token (lock %s).", lock_path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable: without it a power cut can bring the old file back."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_store_path(base_url: str, environ: Mapping[str, str], *, client_id: str) -> Path:
    """Where the store lives when the setting ``oauth_token_store`` is not set.

    Inside the Meltano project (``$MELTANO_PROJECT_ROOT/.meltano/run/...``) when Meltano runs
    the tap, else in the user's config directory. The name is the account's, followed by a
    digest of its whole address and of the OAuth client's fingerprint (never the client id):
    two accounts, even behind one host, and two OAuth clients of one account each have their
    own file, since a refresh token belongs to one client of one account.
    """
    owner = StoreOwner.of(base_url, client_id)
    digest = hashlib.sha256(f"{owner.account}\0{owner.client_sha256}".encode()).hexdigest()[:16]
    return _store_directory(environ) / f"{account_label(base_url)}-{digest}-oauth-token.json"


def legacy_store_path(base_url: str, environ: Mapping[str, str]) -> Path:
    """The default file name of older releases: the host only, shared by every client (taken over once)."""
    return _store_directory(environ) / f"{account_name(base_url)}-oauth-token.json"


def _store_directory(environ: Mapping[str, str]) -> Path:
    project = environ.get("MELTANO_PROJECT_ROOT")
    if project:
        return Path(project) / ".meltano" / "run" / PLUGIN_DIR
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(config_home) / PLUGIN_DIR


def account_address(base_url: str) -> str:
    """The account's whole address, normalised: scheme, host, port (unless the scheme's own), path."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path.rstrip('/')}"


def account_label(base_url: str) -> str:
    """The readable part of the default file name: the account's name, and its path if it has one."""
    path = re.sub(r"[^a-z0-9._-]", "-", urlsplit(base_url).path.strip("/").lower())
    return f"{account_name(base_url)}-{path}" if path else account_name(base_url)


def account_name(base_url: str) -> str:
    """The subdomain ('acme' for acme.zendesk.com), else the api_url's host and port, file-safe."""
    host = urlsplit(base_url).netloc.lower()
    if host.endswith(".zendesk.com"):
        return host.removesuffix(".zendesk.com")
    return re.sub(r"[^a-z0-9._-]", "-", host) or "zendesk"
