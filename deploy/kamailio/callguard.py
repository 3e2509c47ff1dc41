"""callguard's lookup for kamailio.cfg, run inside each Kamailio SIP worker by app_python3.

kamailio.cfg calls `python_exec("lookup", "$var(caller)")`; the answer comes back in $var()s
the routing script acts on. Kamailio 5.6's http_client times out only in whole seconds and
Debian does not ship http_async_client, so the HTTP call is made here: one keep-alive
connection per worker, and one deadline (CALLGUARD_BUDGET_MS) over connecting, sending and
reading, so a callguard that accepts connections and then hangs costs the budget and no more.

Set for kamailio.cfg:
    $var(cg_outcome)   scam | suspicious | verified | unknown   (callguard answered)
                       not_a_number                            (400: the caller is no number)
                       timeout | unreachable | error           (fail-open: pass untouched)
    $var(cg_score), $var(cg_categories), $var(cg_owner)        (from the answer, header-safe)
"""

from __future__ import annotations

import json
import os
import select
import socket
import ssl
import time
import urllib.parse

import KSR  # type: ignore[import-not-found]  # provided by app_python3 inside Kamailio

MAX_BUDGET_MS = 300
"""Every millisecond of the budget is post-dial delay when callguard does not answer."""
MAX_ANSWER_BYTES = 65536
"""A lookup's answer is a few hundred bytes; more is no answer of callguard's."""
VERDICTS = ("scam", "suspicious", "verified", "unknown")


class Unanswered(Exception):
    """callguard gave no usable answer; args[0] is the fail-open reason."""


def header_text(value: object, limit: int = 200) -> str:
    """value as one line a SIP header may carry: no control characters, at most limit."""
    text = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in str(value))
    return text.strip()[:limit]


class Callguard:
    """One worker's connection to callguard and the lookup over it."""

    def __init__(self) -> None:
        url = urllib.parse.urlsplit(os.environ.get("CALLGUARD_URL", ""))
        key = os.environ.get("CALLGUARD_KEY", "")
        budget_ms = int(os.environ.get("CALLGUARD_BUDGET_MS", str(MAX_BUDGET_MS)))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("CALLGUARD_URL must be an http:// or https:// URL")
        if not key or not key.isascii() or not key.isprintable() or " " in key:
            raise ValueError("CALLGUARD_KEY must hold a callguard client key")
        if not os.environ.get("CALLGUARD_NEXT_HOP", "").startswith(("sip:", "sips:")):
            raise ValueError("CALLGUARD_NEXT_HOP must be a SIP URI, e.g. sip:10.0.0.9:5060")
        if not 0 < budget_ms <= MAX_BUDGET_MS:
            raise ValueError(f"CALLGUARD_BUDGET_MS must be 1 to {MAX_BUDGET_MS}")
        self.tls = url.scheme == "https"
        self.host = url.hostname
        self.port = url.port or (443 if self.tls else 80)
        self.path = url.path.rstrip("/") + "/v1/numbers/"
        self.host_header = url.netloc.rsplit("@", 1)[-1]
        self.key = key
        self.budget = budget_ms / 1000
        self.tls_context = ssl.create_default_context() if self.tls else None
        self.sock: socket.socket | None = None

    def child_init(self, rank: int) -> int:
        """app_python3 calls this in each new process: nothing to do, as each worker makes
        its connection at its first lookup."""
        return 0

    def lookup(self, msg: object, caller: str) -> int:
        """python_exec entry point: look the caller up and set the $var()s; always 1."""
        for name in ("cg_score", "cg_categories", "cg_owner"):
            KSR.pv.sets(f"$var({name})", "")
        deadline = time.monotonic() + self.budget
        try:
            status, body = self.get(caller, deadline)
            outcome = self.read_answer(status, body)
        except Unanswered as reason:
            self.close()
            outcome = str(reason)
        except Exception:  # whatever went wrong, the call goes on: fail open
            self.close()
            outcome = "error"
        KSR.pv.sets("$var(cg_outcome)", outcome)
        return 1

    def read_answer(self, status: int, body: bytes) -> str:
        """The outcome of one answer; sets score, categories and owner from a verdict."""
        if status == 400:
            return "not_a_number"
        if status != 200:
            raise Unanswered("error")
        try:
            answer = json.loads(body)
            verdict = answer["verdict"]
        except (ValueError, KeyError, TypeError) as err:
            raise Unanswered("error") from err
        if verdict not in VERDICTS:
            raise Unanswered("error")
        KSR.pv.sets("$var(cg_score)", header_text(answer.get("score", "")))
        KSR.pv.sets("$var(cg_categories)", header_text(", ".join(answer.get("categories", []))))
        KSR.pv.sets("$var(cg_owner)", header_text(answer.get("owner", "")))
        return str(verdict)

    def get(self, caller: str, deadline: float) -> tuple[int, bytes]:
        """GET the caller's verdict on the kept connection, or a new one if callguard closed
        it while idle; (status, body)."""
        request = (
            f"GET {self.path}{urllib.parse.quote(caller, safe='+')} HTTP/1.1\r\n"
            f"Host: {self.host_header}\r\nAuthorization: Bearer {self.key}\r\n"
            "Accept: application/json\r\n\r\n"
        ).encode()
        if self.sock is not None and not self.idle_and_open():
            self.close()
        reused = self.sock is not None
        try:
            return self.exchange(request, deadline)
        except ConnectionError:
            # A kept connection callguard closed a moment ago: once more on a new one.
            self.close()
            if not reused:
                raise Unanswered("unreachable") from None
            try:
                return self.exchange(request, deadline)
            except ConnectionError:
                raise Unanswered("unreachable") from None

    def exchange(self, request: bytes, deadline: float) -> tuple[int, bytes]:
        """Send one request and read its answer, all before the deadline."""
        try:
            if self.sock is None:
                self.sock = self.connect(deadline)
            self.sock.settimeout(remaining(deadline))
            self.sock.sendall(request)
            return self.read_response(self.sock, deadline)
        except TimeoutError:
            raise Unanswered("timeout") from None
        except ssl.SSLError:
            raise Unanswered("error") from None
        except OSError as err:
            if isinstance(err, ConnectionError):
                raise
            raise Unanswered("unreachable") from None

    def connect(self, deadline: float) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=remaining(deadline))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls_context is not None:
            sock.settimeout(remaining(deadline))
            sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
        return sock

    def read_response(self, sock: socket.socket, deadline: float) -> tuple[int, bytes]:
        """(status, body) of an HTTP/1.1 answer with a Content-Length."""
        data = b""
        while b"\r\n\r\n" not in data:
            data += receive(sock, deadline)
            if len(data) > MAX_ANSWER_BYTES:
                raise Unanswered("error")
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
            headers = dict(line.split(":", 1) for line in lines[1:])
            fields = {
                name.strip().lower(): value.strip().lower() for name, value in headers.items()
            }
            length = int(fields["content-length"])
        except (ValueError, IndexError, KeyError):
            raise Unanswered("error") from None
        if length > MAX_ANSWER_BYTES:
            raise Unanswered("error")
        while len(body) < length:
            body += receive(sock, deadline)
        if fields.get("connection") == "close":
            self.close()
        return status, body[:length]

    def idle_and_open(self) -> bool:
        """Whether the kept connection is still open: an idle one that reads as ready has
        been closed (or sent something unasked), so it is not reused."""
        assert self.sock is not None
        readable, _, _ = select.select([self.sock], [], [], 0)
        return not readable

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def remaining(deadline: float) -> float:
    """Seconds left before the deadline; a timeout once none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def receive(sock: socket.socket, deadline: float) -> bytes:
    sock.settimeout(remaining(deadline))
    chunk = sock.recv(16384)
    if not chunk:
        raise ConnectionResetError
    return chunk


def mod_init() -> Callguard:
    """app_python3's entry: a failed check here stops Kamailio at start, not at a call."""
    return Callguard()
