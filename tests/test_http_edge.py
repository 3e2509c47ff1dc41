"""What reaches a real `callguard serve` process as raw bytes, below any handler: requests
aiohttp's parser refuses get problem+json, and nothing of them reaches the logs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.processes import NUMBER, Cli, free_port

pytestmark = pytest.mark.slow  # sends raw bytes to a real `callguard serve` process

RECEIVE_TIMEOUT = 10.0


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; (status, headers, body) of the answer, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=RECEIVE_TIMEOUT) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def test_requests_the_parser_refuses_are_problems_and_leave_no_trace_in_the_logs(
    callguard: Cli, tmp_path: Path
) -> None:
    key = callguard.create_key("client", "app1")
    number = NUMBER[1:]  # 912345678: in any form it was asked about
    padding = "x" * 9000
    refused = {
        "an oversized header": (
            f"GET /v1/numbers/{NUMBER} HTTP/1.1\r\nHost: a\r\n"
            f"Authorization: Bearer {key} {padding}\r\n\r\n"
        ),
        "an oversized request line": (
            f"GET /v1/numbers/{NUMBER}?{padding} HTTP/1.1\r\nHost: a\r\n"
            f"Authorization: Bearer {key}\r\n\r\n"
        ),
        "a malformed request line": f"GET /v1/numbers/{NUMBER} HTTP/1.1 {key}\r\nHost: a\r\n\r\n",
        "a malformed header": (
            f"GET /v1/numbers/{NUMBER} HTTP/1.1\r\nHost: a\r\nBad Header: Bearer {key}\r\n\r\n"
        ),
        "a malformed request line first on its connection": f"G T /{number} HTTP/1.1\r\n\r\n",
        "a Content-Length past Python's int limit": (
            f"POST /v1/lookups HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {'9' * 5000}\r\n\r\n{{}}"
        ),
    }
    with callguard.serve(free_port()) as server:
        for case, raw in refused.items():
            status, headers, body = exchange(server.port, raw.encode())
            assert status == 400, case
            assert headers["content-type"].startswith("application/problem+json"), case
            problem = json.loads(body)
            assert problem["status"] == 400 and problem["title"] == "Bad Request", case
            assert problem["type"] == "urn:callguard:problem:bad-request", case
            assert key not in problem["detail"] and number not in problem["detail"], case
        assert server.terminate() == 0, server.log()
    log = server.log()
    assert "LineTooLong" in log  # the refusals were logged, as their class alone
    for secret in (key, key[-12:], number, padding[:100]):
        assert secret not in log
