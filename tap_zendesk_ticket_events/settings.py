"""The tap's settings, checked as a whole before any request is sent.

JSON Schema (in ``tap.py``) checks each setting's type and range; what it cannot say well
(exactly one auth method, parsable and ordered dates, what a subdomain is, a safe base URL)
is checked here, so that every invalid configuration is refused with one line naming the
setting at fault.

This module is the one place for each default and each rule: ``DEFAULTS`` and
``MAX_PAGE_SIZE`` are used both by ``from_config`` and by the JSON Schema in ``tap.py``
(which imports them), and the subdomain rule lives only here. Reading the defaults back
from the schema instead would make this module depend on the tap class that imports it;
constants that both sides import are the simpler direction. The schema declares no
pattern for ``subdomain`` on purpose: the SDK validates the schema first, and its message
would be a regular expression, where ``base_url`` says what a subdomain is and what to set.

Fields holding secrets are left out of ``repr``: a Settings object that reaches a log line or
a traceback must not carry a token with it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from tap_zendesk_ticket_events import oauth_scopes, scope
from tap_zendesk_ticket_events.dates import epoch_of_iso, iso
from tap_zendesk_ticket_events.errors import ConfigError
from tap_zendesk_ticket_events.token_store import PostgresLocation, default_store_path

if TYPE_CHECKING:
    from collections.abc import Mapping

#: A Zendesk subdomain: 'acme' in https://acme.zendesk.com.
SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ZENDESK_DOMAIN = ".zendesk.com"
#: The default of every setting that has one (the JSON Schema in tap.py declares these).
DEFAULTS: Mapping[str, int | bool | str] = {
    "include_comment_events": False,
    "follow_redactions": True,
    "support_type_scope": scope.DEFAULT,
    "page_size": 1000,
    "request_timeout": 300,
    "progress_interval": 0,
    "oauth_scopes": oauth_scopes.DEFAULT,
}
#: Zendesk's largest per_page for incremental exports.
MAX_PAGE_SIZE = 1000
#: ``--test``: seconds to wait for an answer, and to wait between tries in all (see
#: ``Settings.for_connection_test``): two tries and one wait end within about ten seconds.
TEST_REQUEST_TIMEOUT = 3
TEST_RETRY_WAIT_LIMIT = 4.0
AuthMethod = Literal["api_token", "access_token", "oauth_refresh", "oauth_client_credentials"]
#: The OAuth refresh settings, all required together (the third auth method).
OAUTH_REFRESH_SETTINGS = ("refresh_token", "client_id", "client_secret")
#: The OAuth client's settings: alone (without ``refresh_token``), the client-credentials grant.
CLIENT_SETTINGS = ("client_id", "client_secret")
#: The auth methods a configuration can name, for messages.
AUTH_METHODS = (
    "'client_id' + 'client_secret' (OAuth client credentials), 'refresh_token' + 'client_id' + 'client_secret' "
    "(OAuth refresh, with an optional 'access_token'), 'access_token', or 'email' + 'api_token'"
)


@dataclass(frozen=True)
class Settings:
    """Validated settings in the forms the streams use (epoch seconds, a base URL)."""

    base_url: str
    auth_method: AuthMethod
    email: str | None
    api_token: str | None = field(repr=False)
    access_token: str | None = field(repr=False)
    start_time: int
    end_time: int | None
    include_comment_events: bool
    support_type_scope: scope.Scope
    """Which tickets the ticket events export covers (see scope.py)."""
    page_size: int
    max_requests_per_minute: int | None
    """A cap on export requests per minute; None: the account's budget, as Zendesk announces it."""
    request_timeout: int
    progress_interval: int
    follow_redactions: bool = True
    """Re-read what a redaction erased and write its rows again (see follow.py)."""
    refresh_token: str | None = field(default=None, repr=False)
    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    oauth_token_store: Path | PostgresLocation | None = None
    """Where rotated OAuth tokens are kept (OAuth refresh only; see token_store.py): a file, or
    a PostgreSQL database for machines that do not keep their disk."""
    oauth_token_store_is_default: bool = False
    """True when no ``oauth_token_store`` was set: the file is in the tap's own directory."""
    oauth_scopes: tuple[str, ...] = ()
    """The scopes a client-credentials token is asked with (client credentials only)."""
    address_setting: Literal["subdomain", "api_url"] = "subdomain"
    """The setting ``base_url`` comes from: what a line about an unreachable host names."""
    retry_wait_limit: float | None = None
    """Seconds one request may spend waiting between its tries (None: as the retry policy says)."""

    def for_connection_test(self) -> Settings:
        """The settings ``--test`` sends its one request with: it answers within seconds, whatever fails.

        Each try waits at most ``TEST_REQUEST_TIMEOUT`` for an answer, and the retries of one
        request wait ``TEST_RETRY_WAIT_LIMIT`` in all (a 429's Retry-After of a minute is not
        waited): a failing request ends in about ten seconds.
        """
        return dataclasses.replace(
            self,
            request_timeout=min(self.request_timeout, TEST_REQUEST_TIMEOUT),
            retry_wait_limit=TEST_RETRY_WAIT_LIMIT,
        )

    @property
    def auth_settings(self) -> str:
        """The settings behind the credentials, for messages (never their values)."""
        if self.auth_method == "api_token":
            return "the settings 'email' and 'api_token'"
        if self.auth_method == "oauth_refresh":
            return "the settings 'refresh_token', 'client_id' and 'client_secret'"
        if self.auth_method == "oauth_client_credentials":
            return "the settings 'client_id' and 'client_secret'"
        return "the setting 'access_token'"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], now: float | None = None) -> Settings:
        """Check the whole configuration; raise ConfigError naming the first bad setting.

        ``now`` (epoch seconds, the clock's by default): a ``start_date`` later than it is a
        mistake (a mistyped year), said here; an ``end_date`` later than it is not (it bounds
        a window that is still open).
        """
        start = parse_datetime(config.get("start_date"), "start_date", required=True)
        end = parse_datetime(config.get("end_date"), "end_date", required=False)
        if start is not None and end is not None and end <= start:
            msg = "Setting 'end_date' must be later than 'start_date'."
            raise ConfigError(msg)
        assert start is not None
        now = time.time() if now is None else now
        if start > now:
            msg = (
                f"Setting 'start_date' is in the future: {str(config.get('start_date'))[:40]!r} is later than now "
                f"({iso(int(now))}); a mistyped year? Nothing would ever be exported: set a past date-time."
            )
            raise ConfigError(msg)
        url = base_url(config)
        method = auth_method(config)
        return cls(
            base_url=url,
            auth_method=method,
            email=config.get("email"),
            api_token=config.get("api_token"),
            access_token=config.get("access_token"),
            start_time=start,
            end_time=end,
            include_comment_events=bool(setting(config, "include_comment_events")),
            support_type_scope=support_type_scope(config),
            page_size=int(setting(config, "page_size")),
            max_requests_per_minute=optional_int(config, "max_requests_per_minute"),
            request_timeout=int(setting(config, "request_timeout")),
            progress_interval=int(setting(config, "progress_interval")),
            follow_redactions=bool(setting(config, "follow_redactions")),
            refresh_token=config.get("refresh_token") or None,
            client_id=config.get("client_id") or None,
            client_secret=config.get("client_secret") or None,
            oauth_token_store=oauth_token_store(config, url) if method == "oauth_refresh" else None,
            oauth_token_store_is_default=not config.get("oauth_token_store"),
            oauth_scopes=scopes(config) if method == "oauth_client_credentials" else (),
            address_setting="api_url" if config.get("api_url") else "subdomain",
        )


def setting(config: Mapping[str, Any], name: str) -> Any:
    """The setting's value, or its default when unset (the SDK fills defaults in, tests may not)."""
    value = config.get(name)
    return DEFAULTS[name] if value is None else value


def optional_int(config: Mapping[str, Any], name: str) -> int | None:
    """An integer setting without a default: None when unset (the JSON Schema checked its range)."""
    value = config.get(name)
    return None if value is None or value == "" else int(value)


def support_type_scope(config: Mapping[str, Any]) -> scope.Scope:
    """The scope asked for; anything but the three values Zendesk knows is refused here.

    Zendesk does not document what it answers to an unknown value: never send one.
    """
    value = setting(config, "support_type_scope")
    parsed = scope.parse(value)
    if parsed is None:
        allowed = ", ".join(repr(s) for s in scope.SCOPES)
        msg = f"Setting 'support_type_scope' must be one of {allowed} (got {str(value)[:40]!r})."
        raise ConfigError(msg)
    return parsed


def parse_datetime(value: object, setting: str, *, required: bool) -> int | None:
    """Epoch seconds of an ISO 8601 date or date-time; naive values are taken as UTC."""
    if value is None or value == "":
        if required:
            msg = f"Setting '{setting}' is required (an ISO 8601 date-time, e.g. 2024-01-31T00:00:00Z)."
            raise ConfigError(msg)
        return None
    epoch = epoch_of_iso(str(value))
    if epoch is None:
        msg = f"Setting '{setting}' is not an ISO 8601 date-time: {str(value)[:40]!r}."
        raise ConfigError(msg)
    return epoch


def auth_method(config: Mapping[str, Any]) -> AuthMethod:
    """The one configured auth method; refuse none, several, or part of one.

    ``access_token`` alone is a fixed token; with the three OAuth refresh settings it is
    the current access token, used until it expires and then refreshed. ``client_id`` and
    ``client_secret`` without ``refresh_token`` are the client-credentials grant, which gets
    its own access tokens: an ``access_token`` beside them would never be used, so it is refused.
    """
    has_token = bool(config.get("api_token"))
    has_email = bool(config.get("email"))
    has_access = bool(config.get("access_token"))
    oauth = [name for name in OAUTH_REFRESH_SETTINGS if config.get(name)]
    if has_token and (has_access or oauth):
        msg = f"More than one auth method is configured: configure exactly one auth method, {AUTH_METHODS}."
        raise ConfigError(msg)
    if oauth and "refresh_token" not in oauth:
        return client_credentials(oauth, has_access=has_access)
    if oauth:
        missing = [name for name in OAUTH_REFRESH_SETTINGS if name not in oauth]
        if missing:
            msg = (
                f"Setting '{missing[0]}' is required with {' and '.join(repr(n) for n in oauth)}: OAuth refresh "
                "needs 'refresh_token', 'client_id' and 'client_secret' together."
            )
            raise ConfigError(msg)
        return "oauth_refresh"
    if has_access:
        return "access_token"
    if has_token and not has_email:
        msg = "Setting 'email' is required with 'api_token' (Zendesk's user is '{email}/token')."
        raise ConfigError(msg)
    if has_token:
        return "api_token"
    msg = f"No auth configured: set {AUTH_METHODS}."
    raise ConfigError(msg)


def client_credentials(given: list[str], *, has_access: bool) -> AuthMethod:
    """``client_id`` and ``client_secret`` without ``refresh_token``: both, and nothing else."""
    missing = [name for name in CLIENT_SETTINGS if name not in given]
    if missing:
        msg = (
            f"Setting '{missing[0]}' is required with {given[0]!r}: OAuth client credentials need 'client_id' and "
            "'client_secret' together (the OAuth client's identifier and secret, from Admin Center > Apps and "
            "integrations > APIs > OAuth clients)."
        )
        raise ConfigError(msg)
    if has_access:
        msg = (
            "More than one auth method is configured: 'client_id' + 'client_secret' without 'refresh_token' get "
            "their own access tokens (OAuth client credentials), so 'access_token' would never be used: remove it "
            "(or add 'refresh_token' for OAuth refresh)."
        )
        raise ConfigError(msg)
    return "oauth_client_credentials"


def scopes(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The scopes to ask for: well formed, and covering every stream's requests (see oauth_scopes.py).

    Zendesk grants whatever is asked and refuses the export later (403): a scope that cannot
    serve the tap is refused here, before any request.
    """
    value = str(setting(config, "oauth_scopes"))
    parsed = oauth_scopes.parse(value)
    if parsed is None:
        msg = (
            "Setting 'oauth_scopes' must be OAuth scopes separated by spaces, as Zendesk takes them "
            f"('{oauth_scopes.DEFAULT}', the default; 'read' for every read), got {value[:60]!r}."
        )
        raise ConfigError(msg)
    lacking = oauth_scopes.missing(parsed)
    if lacking:
        msg = (
            f"Setting 'oauth_scopes' lacks {' and '.join(repr(s) for s in lacking)}, which the tap's requests need "
            f"(Zendesk would answer 403): add it, or leave the setting unset for '{oauth_scopes.DEFAULT}'."
        )
        raise ConfigError(msg)
    return parsed


#: A value with a URL scheme: a PostgreSQL URL, or a URL of a store the tap does not have.
URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
POSTGRES_SCHEMES = ("postgresql", "postgres")


def oauth_token_store(config: Mapping[str, Any], url: str) -> Path | PostgresLocation:
    """The token store: a PostgreSQL URL, a file path, else the default file for Meltano or the user.

    A value that looks like a URL of any other scheme is refused, never taken as a path (it
    would create directories named after the URL, and a message would print its password).
    """
    value = config.get("oauth_token_store")
    if not value:
        return default_store_path(url, os.environ, client_id=str(config.get("client_id") or ""))
    scheme = URL_SCHEME.match(str(value))
    if scheme:
        return postgres_store(str(value), scheme[1].lower())
    path = Path(str(value)).expanduser()
    if path.is_dir() or str(value).endswith(("/", os.sep)):
        msg = f"Setting 'oauth_token_store' must name a file, not a directory (got {str(value)[:80]!r})."
        raise ConfigError(msg)
    return path


def postgres_store(value: str, scheme: str) -> PostgresLocation:
    """A PostgreSQL URL the tap can use: the driver is installed and the URL names a host."""
    if scheme not in POSTGRES_SCHEMES:
        msg = (
            f"Setting 'oauth_token_store' is a {scheme}:// URL: it takes a file path or a PostgreSQL URL "
            "(postgresql://user@host:5432/database)."
        )
        raise ConfigError(msg)
    location = PostgresLocation(value)
    try:
        urlsplit(value).port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        msg = "Setting 'oauth_token_store' is not a valid PostgreSQL URL: its port is not a number."
        raise ConfigError(msg) from None
    try:
        import psycopg  # noqa: F401, PLC0415 - the optional extra, needed only by this store
    except ImportError:
        msg = (
            "Setting 'oauth_token_store' is a PostgreSQL URL, which needs psycopg: install "
            "'tap-zendesk-ticket-events[postgres]' (in Meltano: pip_url: 'tap-zendesk-ticket-events[postgres]')."
        )
        raise ConfigError(msg) from None
    return location


def base_url(config: Mapping[str, Any]) -> str:
    """``https://{subdomain}.zendesk.com``, or ``api_url`` (http only on loopback); never both."""
    api_url = config.get("api_url")
    subdomain = config.get("subdomain")
    if api_url and subdomain:
        msg = (
            "Settings 'subdomain' and 'api_url' are both set: set only one ('subdomain' for "
            "https://<subdomain>.zendesk.com, or 'api_url' for any other address)."
        )
        raise ConfigError(msg)
    if api_url:
        parts = urlsplit(str(api_url))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            msg = "Setting 'api_url' must be an absolute http(s) URL such as https://acme.zendesk.com."
            raise ConfigError(msg)
        if parts.username or parts.password or parts.query or parts.fragment:
            msg = "Setting 'api_url' must hold only scheme, host, port and path (no credentials or query)."
            raise ConfigError(msg)
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            msg = "Setting 'api_url' may use plain http only for a loopback host; use https."
            raise ConfigError(msg)
        return str(api_url).rstrip("/")
    if not subdomain:
        msg = "Setting 'subdomain' is required (e.g. 'acme' for https://acme.zendesk.com) unless 'api_url' is set."
        raise ConfigError(msg)
    if not isinstance(subdomain, str) or not SUBDOMAIN.match(subdomain):
        raise ConfigError(subdomain_error(str(subdomain)))
    return f"https://{subdomain}{ZENDESK_DOMAIN}"


def subdomain_error(value: str) -> str:
    """Say what a subdomain is, and what to set instead of ``value`` when that can be told.

    The obvious fixable forms ('Acme', 'acme.zendesk.com', 'https://acme.zendesk.com/') are
    refused too, with the value to set: a setting means one thing, and the token store's
    file name is derived from it.
    """
    shown = value[:60]
    rule = (
        f"Setting 'subdomain' must be the name before {ZENDESK_DOMAIN} in your Zendesk address, "
        f"in lowercase letters, digits and hyphens ('acme' for https://acme{ZENDESK_DOMAIN})"
    )
    host = (urlsplit(value if "//" in value else f"//{value}").hostname or "") if "." in value else ""
    if host.endswith(ZENDESK_DOMAIN) and SUBDOMAIN.match(name := host.removesuffix(ZENDESK_DOMAIN)):
        return f"{rule}; got the address {shown!r}: set {name!r}."
    if host:
        return (
            f"{rule}; got the host name {shown!r}: set the subdomain of your account's "
            f"https://<subdomain>{ZENDESK_DOMAIN} address (Admin Center shows it)."
        )
    if SUBDOMAIN.match(value.lower()):
        return f"{rule}; got {shown!r}: set {value.lower()!r}."
    bad = sorted({char for char in value.lower() if not re.match(r"[a-z0-9-]", char)})
    if bad:
        chars = " ".join(repr(char) for char in bad[:5])
        return f"{rule}; got {shown!r}: {chars} cannot be part of a subdomain; copy it from your Zendesk address."
    return f"{rule}; got {shown!r}: a subdomain starts with a letter or a digit."


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback ranges (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
