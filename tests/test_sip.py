"""callguard in the call path: Kamailio on deploy/kamailio/kamailio.cfg between sipp as the
caller and sipp as the callee, asking callguard (the app, in this test's process) about each
call's caller, and passing calls on untouched when callguard is stopped, hangs or refuses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import AppClient, MakeKey
from tests.processes import free_port
from tests.sip import (
    SYSTEM_ENV,
    Call,
    Callee,
    Proxy,
    callee,
    free_udp_port,
    kamailio,
    kamailio_command,
    place_call,
    stop,
)
from tests.test_alerts import expressions, selectors
from tests.waiting import eventually

pytestmark = pytest.mark.slow

BUDGET_SECONDS = 0.3
"""kamailio.cfg's default CALLGUARD_BUDGET_MS, the most it allows."""
MARGIN_SECONDS = 0.3
"""What the machine may add to the budget: a post-dial delay past both is a failure."""
SCAM = "0913345678"
SUSPICIOUS = "0914345678"
VERIFIED = "02513685134"
UNKNOWN = "0916345678"
OWNER = "Sở Công Thương Đồng Nai"
PREFIX = "[Nghi lừa đảo]"
SWITCH_ALERTS = Path(__file__).parents[1] / "deploy" / "kamailio" / "alerts.yml"
CALLGUARD_HEADERS = ("X-Callguard-Verdict", "X-Callguard-Score", "X-Callguard-Category")


async def seed(client: AppClient, make_key: MakeKey) -> str:
    """One number of each verdict, as lookups will answer; a client key for the proxy."""
    admin = {"Authorization": f"Bearer {await make_key('admin')}"}
    key = await make_key("client")
    listing = {"category": "impersonation_authority"}
    assert (await client.put(f"/v1/numbers/{SCAM}", json=listing, headers=admin)).status == 200
    owner = {"owner": OWNER, "note": "Đường dây nóng"}
    assert (await client.put(f"/v1/allowlist/{VERIFIED}", json=owner, headers=admin)).status == 200
    report = {"number": SUSPICIOUS, "category": "online_loan", "reporter": "r1"}
    auth = {"Authorization": f"Bearer {key}"}
    assert (await client.post("/v1/reports", json=report, headers=auth)).status == 201
    for number, verdict in ((SCAM, "scam"), (SUSPICIOUS, "suspicious"), (VERIFIED, "verified")):
        lookup = await client.get(f"/v1/numbers/{number}", headers=auth)
        assert (await lookup.json())["verdict"] == verdict
    return key


@contextlib.asynccontextmanager
async def call_path(
    tmp_path: Path, callguard_url: str, key: str
) -> AsyncIterator[tuple[Proxy, Callee]]:
    """The proxy, asking callguard_url, in front of a callee."""
    async with callee(tmp_path / "callee") as answering:
        env = {
            "CALLGUARD_URL": callguard_url,
            "CALLGUARD_KEY": key,
            "CALLGUARD_NEXT_HOP": f"sip:127.0.0.1:{answering.port}",
        }
        async with kamailio(tmp_path / "kamailio", env) as proxy:
            yield proxy, answering


@contextlib.asynccontextmanager
async def screening(
    client: AppClient, make_key: MakeKey, tmp_path: Path
) -> AsyncIterator[tuple[Proxy, Callee]]:
    """The proxy asking the test's callguard, seeded with a number of each verdict."""
    key = await seed(client, make_key)
    async with call_path(tmp_path, f"http://127.0.0.1:{client.server.port}", key) as path:
        yield path


def passed_on_untouched(call: Call, answering: Callee, display: str) -> None:
    """The callee got the call as the caller sent it, without any callguard header."""
    assert call.final.status == 200
    invite = answering.invites()[call.call_id]
    assert invite.header("From") == call.invite.header("From")
    assert (invite.header("From") or "").startswith(display)
    for name in (*CALLGUARD_HEADERS, "X-Callguard-Owner"):
        assert invite.header(name) is None, invite


async def test_each_verdict_gets_its_treatment(
    client: AppClient, make_key: MakeKey, tmp_path: Path
) -> None:
    async with screening(client, make_key, tmp_path) as (proxy, answering):
        pai = "P-Asserted-Identity: <sip:{}@carrier.example;user=phone>"

        scam = await place_call(
            tmp_path / "scam", proxy, '"Công an" <sip:caller@example.com>', pai.format(SCAM)
        )
        assert scam.final.start_line == "SIP/2.0 603 Decline"
        assert "cause=603" in (scam.final.header("Reason") or "")
        assert scam.final.header("X-Callguard-Verdict") == "scam"

        suspicious = await place_call(
            tmp_path / "suspicious",
            proxy,
            '"Anh Ba" <sip:caller@example.com>',
            pai.format(SUSPICIOUS),
        )
        assert suspicious.final.status == 200
        tagged = answering.invites()[suspicious.call_id]
        assert tagged.header("X-Callguard-Verdict") == "suspicious"
        assert 0 < int(tagged.header("X-Callguard-Score") or "0") <= 100
        assert tagged.header("X-Callguard-Category") == "online_loan"
        assert (tagged.header("From") or "").startswith(
            f'"{PREFIX} Anh Ba" <sip:caller@example.com>'
        )

        # Without a display name, the handset is shown the prefix and the number.
        nameless = await place_call(
            tmp_path / "nameless", proxy, "<sip:caller@example.com>", pai.format(SUSPICIOUS)
        )
        tagged = answering.invites()[nameless.call_id]
        assert (tagged.header("From") or "").startswith(f'"{PREFIX} {SUSPICIOUS}" <sip:caller@')

        verified = await place_call(
            tmp_path / "verified", proxy, "<sip:caller@example.com>", pai.format(VERIFIED)
        )
        assert verified.final.status == 200
        vouched = answering.invites()[verified.call_id]
        assert vouched.header("X-Callguard-Verdict") == "verified"
        assert vouched.header("X-Callguard-Owner") == OWNER
        assert vouched.header("X-Callguard-Score") is None
        assert vouched.header("From") == verified.invite.header("From")

        unknown = await place_call(
            tmp_path / "unknown", proxy, '"Chị Tư" <sip:caller@example.com>', pai.format(UNKNOWN)
        )
        passed_on_untouched(unknown, answering, '"Chị Tư"')

        # A caller that is no number (callguard answers 400) is passed on untouched too.
        anonymous = await place_call(
            tmp_path / "anonymous", proxy, '"Anonymous" <sip:anonymous@anonymous.invalid>'
        )
        passed_on_untouched(anonymous, answering, '"Anonymous"')

        assert scam.call_id not in answering.invites()  # the scam call never reached the callee
        counts = await proxy.metrics()
    screened = {"scam": 1, "suspicious": 2, "verified": 1, "unknown": 1, "not_a_number": 1}
    for outcome, count in screened.items():
        assert counts[f"kamailio_callguard_screened_total{{{outcome}}}"] == count, counts
    assert not any("fail_open" in name for name in counts), counts


ANY = "<sip:caller@example.com>"
PAI = "P-Asserted-Identity: "
CALLER_FORMS = {
    "PAI sip: +84": (ANY, PAI + "<sip:+84914345678@carrier.example;user=phone>"),
    "PAI sip: 84": (ANY, PAI + "<sip:84914345678@carrier.example>"),
    "PAI sip: 0": (ANY, PAI + '"Ba" <sip:0914345678@carrier.example>'),
    "PAI sip: params": (ANY, PAI + "<sip:0914345678;phone-context=+84@carrier.example;user=phone>"),
    "PAI tel:": (ANY, PAI + "<tel:+84914345678>"),
    "PAI tel: dashes": (ANY, PAI + "tel:+84-914-345-678"),
    "From +84": ("<sip:+84914345678@example.com>", ""),
    "From 84": ("<sip:84914345678@example.com;user=phone>", ""),
    "From 0": ('"Ba" <sip:0914345678@example.com>', ""),
    "From tel:": ("<tel:0914345678>", ""),
}
"""The forms a switch passes the caller in: P-Asserted-Identity wins over From (here an
unknown caller), and From is used without one."""


async def test_caller_in_every_form_a_switch_passes(
    client: AppClient, make_key: MakeKey, tmp_path: Path
) -> None:
    async with screening(client, make_key, tmp_path) as (proxy, answering):
        # All at once, as a switch's calls come: each is screened, none waits for another.
        calls = await asyncio.gather(
            *(
                place_call(tmp_path / f"form{index}", proxy, from_, pai)
                for index, (from_, pai) in enumerate(CALLER_FORMS.values())
            )
        )
        for form, call in zip(CALLER_FORMS, calls, strict=True):
            invite = answering.invites()[call.call_id]
            assert invite.header("X-Callguard-Verdict") == "suspicious", form
        counts = await proxy.metrics()
    assert counts["kamailio_callguard_screened_total{suspicious}"] == len(CALLER_FORMS), counts
    assert not any("fail_open" in name for name in counts), counts


async def test_fails_open_when_callguard_is_stopped(tmp_path: Path) -> None:
    stopped = f"http://127.0.0.1:{free_port()}"
    async with call_path(tmp_path, stopped, "a-key") as (proxy, answering):
        call = await place_call(tmp_path / "call", proxy, '"Ba" <sip:0913345678@example.com>')
        passed_on_untouched(call, answering, '"Ba"')
        assert call.post_dial_delay < BUDGET_SECONDS + MARGIN_SECONDS
        counts = await proxy.metrics()
    assert counts["kamailio_callguard_fail_open_total{unreachable}"] == 1, counts
    assert counts["kamailio_callguard_screened_total{fail_open}"] == 1


async def test_fails_open_when_callguard_refuses_the_key(client: AppClient, tmp_path: Path) -> None:
    """An answer other than a verdict or 400 (here 401) passes the call on; callguard is up,
    so the next call asks again."""
    url = f"http://127.0.0.1:{client.server.port}"
    async with call_path(tmp_path, url, "revoked-or-mistyped") as (proxy, answering):
        for name in ("first", "next"):
            call = await place_call(tmp_path / name, proxy, '"Ba" <sip:0913345678@example.com>')
            passed_on_untouched(call, answering, '"Ba"')
        counts = await proxy.metrics()
    assert counts["kamailio_callguard_fail_open_total{error}"] == 2, counts
    assert "kamailio_callguard_fail_open_total{paused}" not in counts
    # The switch's alerts (deploy/kamailio/alerts.yml) ask for series Kamailio really has.
    rules = SWITCH_ALERTS.read_text()
    for expr in expressions(rules):
        for name, matchers in selectors(expr):
            assert any(key.split("{")[0] == name for key in counts), (name, counts)
            for label, _op, value in matchers:
                assert label == "reason" and f"{name}{{{value}}}" in counts, (expr, counts)


async def test_fails_open_within_budget_when_callguard_hangs(tmp_path: Path) -> None:
    released = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept the connection, read the request, never answer."""
        await released.wait()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with call_path(tmp_path, f"http://127.0.0.1:{port}", "a-key") as (proxy, answering):
            waited = await place_call(
                tmp_path / "first", proxy, '"Ba" <sip:0913345678@example.com>'
            )
            passed_on_untouched(waited, answering, '"Ba"')
            assert BUDGET_SECONDS * 0.9 < waited.post_dial_delay < BUDGET_SECONDS + MARGIN_SECONDS
            # The next call within a second does not wait for callguard again.
            paused = await place_call(tmp_path / "next", proxy, '"Ba" <sip:0913345678@example.com>')
            passed_on_untouched(paused, answering, '"Ba"')
            assert paused.post_dial_delay < BUDGET_SECONDS
            counts = await proxy.metrics()
    finally:
        released.set()
        server.close()
        await server.wait_closed()
    assert counts["kamailio_callguard_fail_open_total{timeout}"] == 1, counts
    assert counts["kamailio_callguard_screened_total{fail_open}"] == 2


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("CALLGUARD_BUDGET_MS", "301", "CALLGUARD_BUDGET_MS must be 1 to 300"),
        ("CALLGUARD_KEY", "", "CALLGUARD_KEY must hold a callguard client key"),
        ("CALLGUARD_NEXT_HOP", "10.0.0.9", "CALLGUARD_NEXT_HOP must be a SIP URI"),
    ],
)
async def test_a_bad_setting_stops_kamailio_at_start(
    tmp_path: Path, setting: str, value: str, says: str
) -> None:
    """Rather than passing every call on unscreened, or holding each for too long."""
    env = {
        **SYSTEM_ENV,
        "CALLGUARD_URL": f"http://127.0.0.1:{free_port()}",
        "CALLGUARD_KEY": "a-key",
        "CALLGUARD_NEXT_HOP": "sip:127.0.0.1:5060",
        setting: value,
    }
    argv = kamailio_command(tmp_path, free_udp_port(), free_port(), True, 1, 64)
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await stop(process)
    assert process.returncode != 0
    assert says in output.decode(errors="replace")


async def test_asks_again_once_callguard_answers(tmp_path: Path) -> None:
    """After a timeout, calls go on without asking for a moment; then one call asks, and once
    callguard answers it, every call is screened again."""
    hung, finished = asyncio.Event(), asyncio.Event()
    body = b'{"number": "+84913345678", "verdict": "suspicious", "score": 50, "categories": []}'
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    answer += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)

    async def hang_then_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The first connection never gets an answer; later ones get one to each request."""
        if not hung.is_set():
            hung.set()
            await finished.wait()
            writer.close()
            return
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(answer)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(hang_then_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with call_path(tmp_path, f"http://127.0.0.1:{port}", "a-key") as (proxy, answering):
            from_ = '"Ba" <sip:0913345678@example.com>'
            first = await place_call(tmp_path / "first", proxy, from_)
            passed_on_untouched(first, answering, '"Ba"')
            calls = iter(range(1000))

            async def screened_again() -> bool:
                call = await place_call(tmp_path / f"call{next(calls)}", proxy, from_)
                invite = answering.invites()[call.call_id]
                return invite.header("X-Callguard-Verdict") == "suspicious"

            await eventually(screened_again, within=10, what="a call screened again", every=0.1)
            assert await screened_again()  # asked again, not paused
            counts = await proxy.metrics()
    finally:
        finished.set()
        server.close()
        await server.wait_closed()
    assert counts["kamailio_callguard_fail_open_total{timeout}"] == 1, counts
    assert counts["kamailio_callguard_screened_total{suspicious}"] == 2, counts
