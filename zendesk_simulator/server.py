"""The HTTP side: a threaded server on loopback only, and the handler that answers each request."""

from __future__ import annotations

import base64
import json
import math
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

from zendesk_simulator.envelopes import DEFAULT_SCOPE, EXPORT_PATHS, PATH_KIND, SCOPES, Page, Request, Simulator
from zendesk_simulator.faults import export_fault, rate_limited, spend_account, spend_export
from zendesk_simulator.oauth import OAUTH_TOKEN_PATH
from zendesk_simulator.redactions import COMMENTS_PATH

#: How often serve_forever looks for a shutdown request: socketserver's 0.5 s made every
#: stop() (the end of every test with a simulator) wait half a second.
POLL_SECONDS = 0.02


class Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    # The answer goes out in two writes, headers then body: with Nagle's algorithm the body
    # waits for the client's delayed ACK of the headers, about 40 ms a request. TCP_NODELAY
    # sends each answer at once (the bytes are the same).
    disable_nagle_algorithm = True

    @override
    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read the request log instead."""

    def route(self, path: str) -> tuple[Simulator, str, str]:
        """The account a path is for, the path inside it, and the prefix naming the account."""
        sim = self.server.sim
        for prefix, account in sim.accounts.items():
            if path.startswith(prefix + "/"):
                return account, path.removeprefix(prefix), prefix
        return sim, path, ""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        sim, path, prefix = self.route(url.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        auth = self.headers.get("Authorization", "")
        record = Request(path, params, 0, time.time(), auth.split(" ", 1)[0])
        record.oauth_generation = sim.oauth.generation_of(auth)
        sim.requests.append(record)
        on_export = sim.oauth.on_export
        if on_export and path in EXPORT_PATHS and sim.oauth.is_live(auth.partition(" ")[2]) and on_export(record):
            self.close_connection = True
            return
        status, body, headers = self.answer(sim, path, params, auth, prefix)
        record.status = status
        if "Retry-After" in headers:
            record.retry_after = int(headers["Retry-After"])
        if isinstance(body, Page):
            record.count = body.count
        if status < 0:  # a fault that is not an HTTP answer
            return
        self.send(status, body, headers)

    def do_POST(self) -> None:
        """Only ``/oauth/tokens`` takes a POST; its body is JSON or a form, as Zendesk takes."""
        sim, path, _ = self.route(urlsplit(self.path).path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        record = Request(path, {}, 0, time.time())
        sim.requests.append(record)
        headers: dict[str, str]
        if path != OAUTH_TOKEN_PATH:
            status, body, headers = 404, {"error": "InvalidEndpoint", "description": "Not found"}, {}
        else:
            try:
                fields = json.loads(raw) if "json" in self.headers.get("Content-Type", "") else None
            except ValueError:
                fields = None
            if not isinstance(fields, dict):
                fields = {k: v[-1] for k, v in parse_qs(raw).items()}
            status, body, headers = sim.oauth.token_answer(fields, record)
        record.status = status
        if status < 0:  # reset the connection without answering
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            return
        self.send(status, body, headers)

    @override
    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header by the simulator's clock, as Zendesk's clock would say it."""
        return super().date_time_string(self.server.sim.clock() if timestamp is None else timestamp)

    def answer(
        self, sim: Simulator, path: str, params: dict[str, str], auth: str, prefix: str = ""
    ) -> tuple[int, Any, dict[str, str]]:
        comments = COMMENTS_PATH.fullmatch(path)
        if path not in EXPORT_PATHS and comments is None:
            return 404, {"error": "InvalidEndpoint", "description": "Not found"}, {}
        refused = sim.oauth.bearer_refusal(auth)
        if refused is not None:
            return refused
        if not self.authorized(sim, auth):
            return 401, {"error": "Couldn't authenticate you"}, {}
        forbidden = sim.oauth.scope_refusal(auth, path, export=comments is None)
        if forbidden is not None:
            return forbidden
        if comments is not None:
            return self.comments_answer(sim, int(comments[1]), params)
        budget: dict[str, str] = {}
        if sim.rate_limit_per_minute is not None:
            wait, budget = spend_export(sim)
            if wait is not None:
                status, body, headers = rate_limited(math.ceil(wait))
                return status, body, {**budget, **headers}
        status, body, headers = self.export_answer(sim, path, params, prefix)
        return status, body, {**budget, **headers}

    def comments_answer(
        self, sim: Simulator, ticket_id: int, params: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        """A ticket's comments (cursor pages, current text; 404 for a deleted ticket), under the
        account-wide limit, not the export budget (redactions.py).
        """
        wait, headers = spend_account(sim)
        if wait is not None:
            status, body, retry = rate_limited(math.ceil(wait))
            return (
                status,
                {**body, "description": "Number of allowed API requests per minute exceeded"},
                {
                    **headers,
                    **retry,
                },
            )
        if sim.redactions.faults:
            answered = export_fault(self, sim.redactions.faults.popleft())
            if answered is not None:
                return answered
        status, body = sim.comments_answer(ticket_id, params, f"http://{self.headers.get('Host', '127.0.0.1')}")
        return status, body, headers

    def export_answer(
        self, sim: Simulator, path: str, params: dict[str, str], prefix: str = ""
    ) -> tuple[int, Any, dict[str, str]]:
        """The export's own answer, once auth and the budget let the request through.

        ``prefix``: the path of the account (see ``Simulator.accounts``), kept in ``next_page``.
        """
        per_page = int(params.get("per_page", "1000"))
        if sim.fault_above_per_page is not None and per_page > sim.fault_above_per_page:
            return 504, {"error": "GatewayTimeout"}, {}
        if sim.faults:
            fault = sim.faults.popleft()
            answered = export_fault(self, fault)
            if answered is not None:
                return answered
        try:
            start_time = int(params["start_time"])
        except (KeyError, ValueError):
            return 400, {"error": "InvalidValue", "description": "start_time is required"}, {}
        if start_time > sim.clock() - 60:
            if sim.too_recent_text:
                return sim.too_recent_status, "Too recent start_time. Use a start_time older than 5 minutes", {}
            return (
                sim.too_recent_status,
                {
                    "error": "InvalidValue",
                    "description": "Too recent start_time. Use a start_time older than 5 minutes",
                },
                {},
            )
        if not 1 <= per_page <= 1000:
            return 400, {"error": "InvalidValue", "description": "per_page must be 1..1000"}, {}
        comments = params.get("include") == "comment_events"
        scope = params.get("support_type_scope", DEFAULT_SCOPE)
        if (
            PATH_KIND[path] == "ticket_events" and scope not in SCOPES
        ):  # what Zendesk answers is undocumented: a 400 is the likely answer
            return 400, {"error": "InvalidValue", "description": f"Invalid support_type_scope: {scope}"}, {}
        base = (sim.next_page_host or f"http://{self.headers.get('Host', '127.0.0.1')}") + prefix
        payload, count = sim.payload(start_time, per_page, comments, base, PATH_KIND[path], scope)
        if sim.latency:
            time.sleep(sim.latency)
        return 200, Page(payload, count), {}

    @staticmethod
    def authorized(sim: Simulator, auth: str) -> bool:
        scheme, _, value = auth.partition(" ")
        if scheme == "Bearer":
            return value == sim.access_token or sim.oauth.is_live(value)
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return user == f"{sim.email}/token" and password == sim.api_token
        return False

    def send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        if isinstance(body, Page):
            payload = body.payload
        else:
            payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        text = isinstance(body, str)
        self.send_header("Content-Type", "text/plain; charset=utf-8" if text else "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sim: Simulator, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.sim = sim
        sim.url = self.url
        self._thread: threading.Thread | None = None

    @override
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client drops its connection (the tap's timeouts do, on purpose);
        report anything else, which would be a fault of the simulator itself.
        """
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(target=self.serve_forever, args=(POLL_SECONDS,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
