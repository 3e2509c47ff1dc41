"""Kamailio and sipp as tests/test_sip.py and loadtest/sip_bench.py run them: the proxy on
deploy/kamailio/kamailio.cfg, the caller and callee scenarios beside this file, and sipp's
message files read back."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from string import Template

import aiohttp

from tests.processes import free_port
from tests.waiting import eventually

SIP_DIR = Path(__file__).resolve().parent
REPO = SIP_DIR.parent.parent
KAMAILIO_CFG = REPO / "deploy" / "kamailio" / "kamailio.cfg"
LOOKUP_SCRIPT = REPO / "deploy" / "kamailio" / "callguard.py"
CALLER_SCENARIO = SIP_DIR / "caller.xml"
CALLEE_SCENARIO = SIP_DIR / "callee.xml"
START_TIMEOUT = 20.0
"""Kamailio answers /metrics within a second; the deadline catches one that never does."""
STOP_TIMEOUT = 10.0
CALL_TIMEOUT = 20.0
"""One call from sipp's start to its end (a few milliseconds, or the budget when failing open)."""
SYSTEM_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
"""Kamailio's environment besides the callguard settings: the system's own. Its embedded
Python finds its standard library by the python3 first on PATH, which in a virtualenv or
pyenv shell is another build than Debian's libpython."""
_SEPARATOR = re.compile(r"^-{47} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\n", re.MULTILINE)
_METRIC = re.compile(r'^(\w+)(?:\{(\w+)="([^"]*)"\})? (\S+)', re.MULTILINE)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class SipMessage:
    """One message in a sipp message file (-trace_msg), as sent or received."""

    at: datetime
    sent: bool
    start_line: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first value of a header, by its name in any letter case; None without one."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    @property
    def call_id(self) -> str:
        call_id = self.header("Call-ID")
        assert call_id is not None, self
        return call_id

    @property
    def status(self) -> int | None:
        """A response's status code; None for a request."""
        if not self.start_line.startswith("SIP/2.0 "):
            return None
        return int(self.start_line.split(" ", 2)[1])

    @property
    def method(self) -> str | None:
        return None if self.status is not None else self.start_line.split(" ", 1)[0]


def read_messages(path: Path) -> list[SipMessage]:
    """The messages of a sipp message file, in order; none if sipp has not written it yet."""
    if not path.exists():
        return []
    parts = _SEPARATOR.split(path.read_text(encoding="utf-8", errors="replace"))
    messages = []
    for stamp, block in zip(parts[1::2], parts[2::2], strict=True):
        what, _, text = block.partition("\n\n")
        lines = text.strip("\n").split("\n")
        headers = tuple(
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        )
        messages.append(
            SipMessage(
                at=datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f"),
                sent=" sent " in what,
                start_line=lines[0],
                headers=headers,
            )
        )
    return messages


def caller_scenario(from_: str, extra_headers: str = "") -> str:
    """tests/sip/caller.xml with its From header (display name and URI) and any further
    headers, one a line (a P-Asserted-Identity), filled in."""
    template = Template(CALLER_SCENARIO.read_text(encoding="utf-8"))
    extra = extra_headers or "Subject: call"  # the template's line may not be left empty
    return template.substitute({"from": from_, "extra_headers": extra})


@dataclass(frozen=True)
class Proxy:
    """A running Kamailio: SIP on udp 127.0.0.1:sip_port, /metrics on tcp metrics_port."""

    process: asyncio.subprocess.Process
    sip_port: int
    metrics_port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def metrics(self) -> dict[str, float]:
        """Its callguard counters: 'name' or 'name{label}' (the label's value) -> count."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200, await response.text()
            text = await response.text()
        return {
            name if label is None else f"{name}{{{value}}}": float(count)
            for name, label, value, count in _METRIC.findall(text)
        }


def kamailio_command(
    run_dir: Path, sip_port: int, metrics_port: int, screening: bool, children: int, memory_mb: int
) -> list[str]:
    """Kamailio in the foreground on deploy/kamailio/kamailio.cfg, logging to stderr."""
    defines = [f'CALLGUARD_LOOKUP="{LOOKUP_SCRIPT}"'] + ([] if screening else ["WITHOUT_SCREENING"])
    argv = ["kamailio", "-f", str(KAMAILIO_CFG), "-DD", "-E"]
    argv += ["-Y", str(run_dir), "-w", str(run_dir)]  # its control socket and working dir
    argv += ["-l", f"udp:127.0.0.1:{sip_port}", "-l", f"tcp:127.0.0.1:{metrics_port}"]
    argv += ["-n", str(children), "-m", str(memory_mb), "-M", "8"]
    return argv + [arg for define in defines for arg in ("-A", define)]


@contextlib.asynccontextmanager
async def kamailio(
    run_dir: Path,
    env: Mapping[str, str],
    *,
    screening: bool = True,
    children: int = 2,
    memory_mb: int = 64,
) -> AsyncIterator[Proxy]:
    """Kamailio on deploy/kamailio/kamailio.cfg with env (CALLGUARD_URL, ...), until /metrics
    answers; without callguard when screening is False. Stopped on the way out."""
    run_dir.mkdir(parents=True, exist_ok=True)
    sip_port, metrics_port = free_udp_port(), free_port()
    argv = kamailio_command(run_dir, sip_port, metrics_port, screening, children, memory_mb)
    log_path = run_dir / "kamailio.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env={**SYSTEM_ENV, **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    proxy = Proxy(process, sip_port, metrics_port, log_path)
    try:

        async def ready() -> bool:
            assert process.returncode is None, f"kamailio exited:\n{proxy.log()}"
            with contextlib.suppress(aiohttp.ClientError, AssertionError):
                await proxy.metrics()
                return True
            return False

        await eventually(ready, START_TIMEOUT, lambda: f"kamailio ready:\n{proxy.log()}")
        yield proxy
    finally:
        await stop(process)


@dataclass(frozen=True)
class Callee:
    """A running sipp answering every call on 127.0.0.1:port; what it received in messages."""

    process: asyncio.subprocess.Process
    port: int
    message_file: Path

    def invites(self) -> dict[str, SipMessage]:
        """The INVITEs that reached the callee, by Call-ID."""
        return {
            message.call_id: message
            for message in read_messages(self.message_file)
            if not message.sent and message.method == "INVITE"
        }


@contextlib.asynccontextmanager
async def callee(work_dir: Path, *, trace: bool = True) -> AsyncIterator[Callee]:
    """sipp as the callee (tests/sip/callee.xml), its messages in a file when trace is set."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    message_file = work_dir / "callee_messages.log"
    argv = ["sipp", "-sf", str(CALLEE_SCENARIO), "-i", "127.0.0.1", "-p", str(port), "-nostdin"]
    argv += ["-trace_msg", "-message_file", str(message_file)] if trace else []
    argv += ["-trace_err", "-error_file", str(work_dir / "callee_errors.log")]
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=work_dir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield Callee(process, port, message_file)
    finally:
        await stop(process)


@dataclass(frozen=True)
class Call:
    """One call sipp placed through the proxy, as the caller saw it."""

    messages: list[SipMessage]

    @property
    def invite(self) -> SipMessage:
        return next(m for m in self.messages if m.sent and m.method == "INVITE")

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def final(self) -> SipMessage:
        """The final answer to the INVITE."""
        return next(
            m
            for m in self.messages
            if not m.sent and (m.status or 0) >= 200 and m.header("CSeq") == "1 INVITE"
        )

    @property
    def post_dial_delay(self) -> float:
        """Seconds from the INVITE to its first answer past 100 Trying (180, 200 or 603)."""
        first = next(m for m in self.messages if not m.sent and (m.status or 0) > 100)
        return (first.at - self.invite.at).total_seconds()


async def place_call(work_dir: Path, proxy: Proxy, from_: str, extra_headers: str = "") -> Call:
    """One call from sipp (tests/sip/caller.xml) through the proxy; fails unless sipp ends it
    as its scenario says (answered and hung up, or declined and acknowledged)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    scenario = work_dir / "caller.xml"
    scenario.write_text(caller_scenario(from_, extra_headers), encoding="utf-8")
    message_file = work_dir / "caller_messages.log"
    error_file = work_dir / "caller_errors.log"
    process = await asyncio.create_subprocess_exec(
        "sipp", f"127.0.0.1:{proxy.sip_port}", "-sf", str(scenario), "-i", "127.0.0.1",
        "-p", str(free_udp_port()), "-m", "1", "-nostdin", "-timeout", f"{CALL_TIMEOUT:g}s",
        "-trace_msg", "-message_file", str(message_file),
        "-trace_err", "-error_file", str(error_file),
        cwd=work_dir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        status = await asyncio.wait_for(process.wait(), CALL_TIMEOUT + 5)
    finally:
        await stop(process)
    errors = error_file.read_text(errors="replace") if error_file.exists() else ""
    assert status == 0, f"sipp caller exited {status}:\n{errors}\n{proxy.log()}"
    return Call(read_messages(message_file))


async def stop(process: asyncio.subprocess.Process) -> None:
    """Make sure a process this module started is gone: SIGTERM, then SIGKILL."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
