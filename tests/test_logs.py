"""Logs: one JSON line per request, naming the route, status, latency and key id; never the
key, the number asked about, or the reporter."""

from __future__ import annotations

import io
import json
import logging

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from callguard import logs
from callguard.app import create_app
from callguard.config import Config
from callguard.state import REQUEST_LOG

from tests.conftest import MakeKey
from tests.waiting import eventually


async def test_each_request_is_one_json_line_without_secrets(
    config: Config, make_key: MakeKey
) -> None:
    lines = io.StringIO()
    async with TestClient(TestServer(create_app(config, log_stream=lines))) as client:
        await check_the_log(client, await make_key("client"), lines)


async def check_the_log(
    client: TestClient[web.Request, web.Application], key: str, lines: io.StringIO
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    report = {"number": "0912345678", "category": "other", "reporter": "zalo-user-8812"}
    assert (await client.post("/v1/reports", json=report, headers=headers)).status == 201
    assert (await client.get("/v1/numbers/0987654321", headers=headers)).status == 200
    assert (await client.get("/v1/numbers/0987654321")).status == 401
    assert (await client.get("/nowhere")).status == 404
    client.app[REQUEST_LOG].buffer.flush()
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    api_key_id = records[0]["key_id"]
    assert isinstance(api_key_id, int)
    assert [(r["method"], r["route"], r["status"], r["key_id"]) for r in records] == [
        ("POST", "/v1/reports", 201, api_key_id),
        ("GET", "/v1/numbers/{number}", 200, api_key_id),
        ("GET", "/v1/numbers/{number}", 401, None),
        ("GET", "unmatched", 404, None),
    ]
    assert all(r["ms"] >= 0 and r["ts"] > 1.7e9 for r in records)
    for secret in (key, "0912345678", "0987654321", "912345678", "zalo-user-8812"):
        assert secret not in lines.getvalue()


async def test_lines_are_written_without_waiting_for_more() -> None:
    lines = io.StringIO()
    buffer = logs.LineBuffer(lines)
    buffer.add('{"a": 1}\n')
    assert lines.getvalue() == ""
    await eventually(lambda: lines.getvalue() == '{"a": 1}\n', what="the line written")


def test_the_services_own_messages_are_json_lines() -> None:
    out = io.StringIO()
    logs.configure(out)
    try:
        logging.getLogger("callguard.test").warning("the feed lost its connection: %s", "x")
        asked = "0912345678"
        try:
            raise RuntimeError(asked)
        except RuntimeError:
            logging.getLogger("callguard.test").exception("failed")
    finally:
        logging.getLogger().handlers.clear()
    first, second = (json.loads(line) for line in out.getvalue().splitlines()[:2])
    assert first["level"] == "warning" and first["message"].endswith(": x")
    assert second["level"] == "error" and "RuntimeError (message withheld)" in second["error"]
    assert "0912345678" not in second["error"]  # a message may quote what a client sent


async def test_an_unhandled_error_is_logged_without_its_message(
    config: Config, make_key: MakeKey
) -> None:
    async def fail(request: web.Request) -> web.Response:
        try:
            int(request.headers["X-Secret"])
        except ValueError as err:
            raise RuntimeError(f"bad {request.headers['X-Secret']}") from err
        return web.Response()

    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure(stream)
    try:
        app = create_app(config, log_stream=io.StringIO())
        app.router.add_get("/v1/failing-probe", fail)
        async with TestClient(TestServer(app)) as client:
            headers = {"Authorization": f"Bearer {await make_key('client')}", "X-Secret": "0912x"}
            assert (await client.get("/v1/failing-probe", headers=headers)).status == 500
    finally:
        root.handlers[:], root.level = handlers, level
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    [failure] = [record for record in records if record["logger"] == "callguard.problems"]
    assert "0912x" not in stream.getvalue()
    assert "builtins.RuntimeError (message withheld)" in failure["error"]
    assert "builtins.ValueError (message withheld)" in failure["error"]
    assert "in fail" in failure["error"]  # where it failed
