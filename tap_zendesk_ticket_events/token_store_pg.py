"""The OAuth token store in PostgreSQL: the file store's guarantees, across machines.

Scheduled runs on Kubernetes, Airflow or CI start on a machine that has never seen the last
run's disk: a token file kept there is gone, and the configured refresh token was rotated away
by that run. A database the team already runs keeps the store instead. One row per account and
OAuth client, in a table the tap creates when it is missing:

- a refresh holds a session-level advisory lock (``pg_advisory_lock``) on that row's key from
  before it reads the row until after it has written the new pair, so runs on different
  machines at the same moment never burn each other's token; the lock goes with the session if
  the run dies;
- every write is committed when it returns (autocommit), before the new access token is used;
- the row keeps the live access token and its expiry, so a run that finds one uses it instead
  of refreshing.

psycopg (3) is the optional extra ``tap-zendesk-ticket-events[postgres]``, imported here only.
The password comes from the URL or from libpq's usual ``PGPASSWORD`` or ``~/.pgpass``; no
message names it, nor a token.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from typing import TYPE_CHECKING, Any

import psycopg

from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.token_store import StoredTokens, fingerprint

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_zendesk_ticket_events.token_store import PostgresLocation

logger = logging.getLogger(__name__)

TABLE = "tap_zendesk_ticket_events_oauth_tokens"
#: Serialises the creation of the table by runs that start at the same moment.
CREATE_LOCK_KEY = int.from_bytes(hashlib.sha256(TABLE.encode()).digest()[:8], "big", signed=True)
CREATE_TABLE = f"""
create table if not exists {TABLE} (
    account text not null,
    client_sha256 text not null,
    refresh_token text not null,
    access_token text,
    expires_at double precision,
    lifetime double precision,
    seeded_from_sha256 text[] not null default '{{}}',
    generation bigint not null default 1,
    updated_at timestamptz not null default now(),
    primary key (account, client_sha256)
)"""
CONNECT_TIMEOUT_SECONDS = 10


class PostgresTokenStore:
    """The row of one account and OAuth client in the tokens table."""

    def __init__(self, location: PostgresLocation, *, account: str, client_id: str) -> None:
        self._location = location
        self._account = account
        self._client = fingerprint(client_id)
        self._key = int.from_bytes(
            hashlib.sha256(f"{account}\0{self._client}".encode()).digest()[:8], "big", signed=True
        )
        self._connection: psycopg.Connection[Any] | None = None
        self._holding = False

    @property
    def name(self) -> str:
        return self._location.shown

    # --- the connection --------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """The open connection, made (and the table created) on first use or after a loss."""
        if self._connection is not None and not self._connection.closed and not self._connection.broken:
            return self._connection
        if self._holding:  # a new session would not hold the lock the refresh relies on
            msg = f"Lost the OAuth token store {self.name} during a refresh: its lock went with the connection."
            raise TapError(msg)
        try:
            connection = psycopg.connect(
                self._location.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="tap-zendesk-ticket-events",
            )
            with connection.transaction():
                connection.execute("select pg_advisory_xact_lock(%s)", (CREATE_LOCK_KEY,))
                connection.execute(CREATE_TABLE)
        except psycopg.Error as exc:
            raise TapError(self._unreachable(exc)) from None
        self._connection = connection
        return connection

    def _unreachable(self, exc: BaseException) -> str:
        return f"Cannot reach the OAuth token store {self.name}: {self._reason(exc)}."

    def _reason(self, exc: BaseException) -> str:
        """The driver's first line, scrubbed of any password it could quote."""
        text = " ".join(str(exc).strip().splitlines()[:1]) or type(exc).__name__
        for secret in (self._location.password, os.environ.get("PGPASSWORD")):
            if secret:
                text = text.replace(secret, "***")
        return text[:300]

    @contextlib.contextmanager
    def _talking(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """The connection; a lost store ends the run with one line saying what it was doing."""
        connection = self._connect()
        try:
            yield connection
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                connection.close()
            msg = f"Lost the OAuth token store {self.name} while {doing}: {self._reason(exc)}."
            raise TapError(msg) from None

    # --- the store -------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the row's advisory lock, across the refresh: every machine's runs take it."""
        connection = self._take_lock()
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            # A lost connection has released the lock already, with its session.
            with contextlib.suppress(psycopg.Error):
                connection.execute("select pg_advisory_unlock(%s)", (self._key,))

    def _take_lock(self) -> psycopg.Connection[Any]:
        """Take the lock, on a new connection if the server closed the idle one.

        Between refreshes the connection idles for most of a token's life: an idle timeout, a
        restart, a failover or a proxy may close it, and only using it tells. Nothing is held
        yet, so one new connection is as good as the old; a second loss is the store's failure.
        """
        for attempt in (1, 2):
            connection = self._connect()
            try:
                taken = connection.execute("select pg_try_advisory_lock(%s)", (self._key,)).fetchone()
                if not (taken and taken[0]):
                    logger.info(
                        "Waiting for another run to finish refreshing the OAuth token (token store %s).", self.name
                    )
                    connection.execute("select pg_advisory_lock(%s)", (self._key,))
            except psycopg.Error as exc:
                lost = connection.closed or connection.broken
                with contextlib.suppress(psycopg.Error):
                    connection.close()
                if attempt == 1 and lost:
                    logger.info(
                        "The OAuth token store %s closed the connection (%s); connecting again.",
                        self.name,
                        self._reason(exc),
                    )
                    continue
                msg = f"Lost the OAuth token store {self.name} while taking its lock: {self._reason(exc)}."
                raise TapError(msg) from None
            return connection
        raise AssertionError  # pragma: no cover - the loop returns or raises

    @contextlib.contextmanager
    def ready_to_save(self) -> Iterator[None]:
        """Before a refresh, write the row without changing it, under the advisory lock.

        A read-only server (a failover to a standby) or a missing privilege fails here, with
        no token requested, instead of after Zendesk has rotated the pair.
        """
        with self._talking("making sure it can save a refresh (no token was requested)") as connection:
            connection.execute(
                f"update {TABLE} set generation = generation where account = %s and client_sha256 = %s",  # noqa: S608
                (self._account, self._client),
            )
        yield

    def read(self) -> StoredTokens | None:
        with self._talking("reading the tokens") as connection:
            row = connection.execute(
                f"select refresh_token, access_token, expires_at, lifetime, seeded_from_sha256 from {TABLE} "  # noqa: S608 - a constant
                "where account = %s and client_sha256 = %s",
                (self._account, self._client),
            ).fetchone()
        if row is None:
            return None
        refresh, access, expires_at, lifetime, seeds = row
        return StoredTokens(refresh, access, expires_at, lifetime, tuple(seeds or ()))

    def write(self, tokens: StoredTokens) -> None:
        """Upsert the row; committed when this returns (autocommit)."""
        with self._talking("saving the tokens (if a refresh just happened, its rotated token is lost)") as connection:
            connection.execute(
                f"insert into {TABLE} as t (account, client_sha256, refresh_token, access_token, expires_at, "  # noqa: S608
                "lifetime, seeded_from_sha256) values (%s, %s, %s, %s, %s, %s, %s) "
                "on conflict (account, client_sha256) do update set refresh_token = excluded.refresh_token, "
                "access_token = excluded.access_token, expires_at = excluded.expires_at, "
                "lifetime = excluded.lifetime, seeded_from_sha256 = excluded.seeded_from_sha256, "
                "generation = t.generation + 1, updated_at = now()",
                (
                    self._account,
                    self._client,
                    tokens.refresh_token,
                    tokens.access_token,
                    tokens.expires_at,
                    tokens.lifetime,
                    list(tokens.seeded_from),
                ),
            )

    def stamp(self) -> object:
        """The row's generation: one query, asked before each request to see another run's write."""
        with self._talking("checking for another run's refresh") as connection:
            row = connection.execute(
                f"select generation from {TABLE} where account = %s and client_sha256 = %s",  # noqa: S608
                (self._account, self._client),
            ).fetchone()
        return None if row is None else row[0]
