"""The post-dial delay screening adds: Kamailio with deploy/kamailio/kamailio.cfg asking callguard
on every INVITE, against the same Kamailio without screening, at 50, 200 and 500 calls a second.
Run from the repository root (needs Debian's kamailio, kamailio-python3-modules and
sip-tester, as .ci/run installs them):

    python loadtest/sip_bench.py [--seconds 10] [--rates 50 200 500]

Everything runs on 127.0.0.1: `callguard serve` on an embedded Postgres in a temp dir, with
some numbers listed (scam), reported (suspicious) and allowlisted (verified); sipp as the
callee (tests/sip/callee.xml); Kamailio (4 SIP workers, 256 MB of shared memory) between it
and sipp as the caller (tests/sip/caller.xml), whose callers come from a list that is 90 %
unknown numbers, 5 % scam, 3 % suspicious and 2 % verified, in P-Asserted-Identity. Each
rate runs --seconds with and without screening; calls in its first second are left out
(connections being made). Last, 200 calls a second for --seconds with a callguard that
accepts connections and never answers: every call fails open, and the delays show what the
budget and the pause cost.

The post-dial delay is the caller's time from sending the INVITE to the first answer past 100
Trying (180 Ringing, or 603 Decline for a scam), from the timestamps in sipp's message file
(microseconds). CPU is user + system seconds over the measured run, over its length, as a
share of one core: Kamailio and all its processes; callguard, its Postgres included; both
sipps. "Machine busy" is the share of all cores in use over the run, whatever used them: the
figures are only as quiet as the machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

LOADTEST = Path(__file__).resolve().parent
sys.path.insert(0, str(LOADTEST.parent))  # for tests.* and benchmarks.machine

from benchmarks.machine import machine  # noqa: E402
from tests.processes import (  # noqa: E402
    ENTRY_POINTS,
    Cli,
    Server,
    free_port,
    fresh_data_dir,
    make_database,
    postmaster_pid,
)
from tests.sip import (  # noqa: E402
    Proxy,
    SipMessage,
    callee,
    caller_scenario,
    free_udp_port,
    kamailio,
    read_messages,
    stop,
)

CHILDREN = 4
"""Kamailio's SIP workers: kamailio.cfg's own default."""
SHARED_MEMORY_MB = 256
"""Kamailio keeps each transaction for seconds after it ends: 64 MB (Debian's default) runs
out at 500 calls a second."""
MIX = {"unknown": 90, "scam": 5, "suspicious": 3, "verified": 2}
"""Per cent of calls by the caller's verdict."""
WARM_UP_SECONDS = 1.0
RECV_TIMEOUT_MS = 10_000
"""A call waiting this long for a message has failed (sipp then ends it and goes on)."""
HUNG_RATE = 200
"""Calls a second for the run with a callguard that accepts connections and never answers."""
SLACK_SECONDS = 30.0
"""sipp's time past the calls' schedule before it counts as stuck."""


@dataclass(frozen=True)
class Run:
    """One rate in one mode: the delays of its calls and the CPU its processes used."""

    rate: int
    screening: bool
    delays: list[float]
    failed: int
    kamailio_cpu: float
    callguard_cpu: float
    sipp_cpu: float
    """Both sipps', the load generator's share."""
    machine_busy: float
    """Share of the machine's cores busy over the run, sipp and everything else included."""
    outcomes: dict[str, float]
    """Kamailio's callguard counters at the end: calls by outcome, fail-opens by reason."""

    def percentile(self, share: float) -> float:
        """The delay in ms at this share of calls (nearest rank)."""
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def numbers(kind: str, count: int) -> list[str]:
    """Distinct mobile numbers for one verdict, in national form (0 + 9 digits)."""
    prefix = {"unknown": "090", "scam": "091", "suspicious": "093", "verified": "094"}[kind]
    return [f"{prefix}{i:07d}" for i in range(count)]


def seed(server: Server, admin: str, client: str) -> dict[str, list[str]]:
    """The listed, reported and allowlisted numbers the callers come from."""
    callers = {kind: numbers(kind, 2000 if kind == "unknown" else 50) for kind in MIX}
    for number in callers["scam"]:
        status, _ = server.request(
            "PUT", f"/v1/numbers/{number}", admin, {"category": "investment"}
        )
        assert status == 200, status
    for number in callers["verified"]:
        body = {"owner": "Ngân hàng TMCP", "note": "tổng đài"}
        status, _ = server.request("PUT", f"/v1/allowlist/{number}", admin, body)
        assert status == 200, status
    for number in callers["suspicious"]:
        body = {"number": number, "category": "online_loan", "reporter": f"bench-{number}"}
        status, _ = server.request("POST", "/v1/reports", client, body)
        assert status == 201, status
    for kind in ("scam", "suspicious", "verified"):
        status, answer = server.request("GET", f"/v1/numbers/{callers[kind][0]}", client)
        assert answer["verdict"] == kind, answer
    return callers


def injection_file(path: Path, callers: dict[str, list[str]], calls: int) -> None:
    """sipp's -inf: one caller a line, drawn by MIX."""
    pick = random.Random(20261130)
    kinds = pick.choices(list(MIX), weights=list(MIX.values()), k=calls)
    lines = [pick.choice(callers[kind]) for kind in kinds]
    path.write_text("SEQUENTIAL\n" + "\n".join(lines) + "\n", encoding="utf-8")


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system seconds of these processes and their children, as of now."""
    total = 0.0
    for process in processes:
        for each in [process, *process.children(recursive=True)]:
            try:
                times = each.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total


def busy_share(before: Any, after: Any) -> float:
    """The share of all cores' time between two psutil.cpu_times() that was not idle."""
    total = sum(after) - sum(before)
    idle = (after.idle + after.iowait) - (before.idle + before.iowait)
    return float(1 - idle / total) if total else 0.0


def reaped_cpu_seconds() -> float:
    """User + system seconds of this process's children that have ended and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def delays(messages: list[SipMessage], since: float) -> tuple[list[float], int]:
    """Post-dial delays in seconds of the calls whose INVITE went after `since` (seconds
    after the first INVITE), and how many of those got no answer past 100."""
    invites: dict[str, float] = {}
    first: dict[str, float] = {}
    start = None
    for message in messages:
        at = message.at.timestamp()
        if message.sent and message.method == "INVITE":
            start = at if start is None else start
            invites.setdefault(message.call_id, at)
        elif (
            not message.sent
            and (message.status or 0) > 100
            and message.header("CSeq") == "1 INVITE"
        ):
            first.setdefault(message.call_id, at)
    assert start is not None, "sipp sent no INVITE"
    measured = [call for call, at in invites.items() if at - start >= since]
    answered = [first[call] - invites[call] for call in measured if call in first]
    return answered, len(measured) - len(answered)


async def one_run(
    work: Path, rate: int, seconds: float, screening: bool, env: dict[str, str],
    callguard: list[psutil.Process], callers: dict[str, list[str]],
) -> Run:  # fmt: skip
    """rate calls a second for `seconds` through Kamailio, with or without screening."""
    calls = int(rate * seconds)
    work.mkdir(parents=True)
    inf = work / "callers.csv"
    injection_file(inf, callers, calls)
    scenario = work / "caller.xml"
    pai = "P-Asserted-Identity: <sip:[field0]@carrier.example;user=phone>"
    scenario.write_text(caller_scenario("<sip:[field0]@carrier.example>", pai), encoding="utf-8")
    message_file = work / "caller_messages.log"
    async with callee(work / "callee", trace=False) as answering:
        env = {**env, "CALLGUARD_NEXT_HOP": f"sip:127.0.0.1:{answering.port}"}
        run_dir = work / "kamailio"
        async with kamailio(
            run_dir, env, screening=screening, children=CHILDREN, memory_mb=SHARED_MEMORY_MB
        ) as proxy:
            kamailio_processes = [psutil.Process(proxy.process.pid)]
            before = cpu_seconds(kamailio_processes), cpu_seconds(callguard)
            machine_before = psutil.cpu_times()
            began = time.monotonic()
            callee_process = [psutil.Process(answering.process.pid)]
            # The caller's CPU is read once it has exited and been waited for, the only
            # process of this script's to end in the run.
            sipp_before = cpu_seconds(callee_process) + reaped_cpu_seconds()
            caller = await start_caller(work, proxy, scenario, inf, message_file, rate, calls)
            try:
                status = await asyncio.wait_for(caller.wait(), seconds + SLACK_SECONDS)
            finally:
                await stop(caller)
            elapsed = time.monotonic() - began
            sipp_used = cpu_seconds(callee_process) + reaped_cpu_seconds() - sipp_before
            after = cpu_seconds(kamailio_processes), cpu_seconds(callguard)
            machine_busy = busy_share(machine_before, psutil.cpu_times())
            outcomes = await proxy.metrics()
    answered, failed = delays(read_messages(message_file), WARM_UP_SECONDS)
    if status != 0:
        print(f"  (sipp exited {status} at {rate}/s: calls failed; see {work})", file=sys.stderr)
    return Run(
        rate=rate,
        screening=screening,
        delays=answered,
        failed=failed,
        kamailio_cpu=(after[0] - before[0]) / elapsed,
        callguard_cpu=(after[1] - before[1]) / elapsed if screening else 0.0,
        sipp_cpu=sipp_used / elapsed,
        machine_busy=machine_busy,
        outcomes=outcomes,
    )


async def start_caller(
    work: Path, proxy: Proxy, scenario: Path, inf: Path, message_file: Path, rate: int, calls: int
) -> asyncio.subprocess.Process:
    """sipp placing `calls` calls at `rate` a second, callers from the injection file."""
    return await asyncio.create_subprocess_exec(
        "sipp", f"127.0.0.1:{proxy.sip_port}", "-sf", str(scenario), "-inf", str(inf),
        "-i", "127.0.0.1", "-p", str(free_udp_port()), "-r", str(rate), "-m", str(calls),
        "-l", str(max(rate, 100)), "-nostdin", "-trace_msg", "-message_file", str(message_file),
        "-recv_timeout", str(RECV_TIMEOUT_MS),
        "-trace_err", "-error_file", str(work / "caller_errors.log"),
        cwd=work,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def bench(
    work: Path, env: dict[str, str], callguard: list[psutil.Process],
    callers: dict[str, list[str]], rates: list[int], seconds: float,
) -> tuple[list[tuple[Run, Run]], Run]:  # fmt: skip
    """Each rate without and with screening; then HUNG_RATE with a callguard that hangs."""
    pairs = []
    for rate in rates:
        plain = await one_run(work / f"{rate}-plain", rate, seconds, False, env, callguard, callers)
        screened = await one_run(
            work / f"{rate}-screened", rate, seconds, True, env, callguard, callers
        )
        pairs.append((plain, screened))
    released = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept the connection, never answer."""
        await released.wait()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    hung_env = {**env, "CALLGUARD_URL": f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"}
    try:
        hung = await one_run(work / "hung", HUNG_RATE, seconds, True, hung_env, callguard, callers)
    finally:
        released.set()
        server.close()
        await server.wait_closed()
    return pairs, hung


def table(pairs: list[tuple[Run, Run]]) -> str:
    lines = [
        "| calls/s | calls measured | p50 without / with screening | p99 without / with "
        "| unanswered | CPU Kamailio without / with | CPU callguard | CPU sipp without / with "
        "| machine busy without / with |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for plain, screened in pairs:
        lines.append(
            f"| {plain.rate} | {len(plain.delays)} / {len(screened.delays)} "
            f"| {plain.percentile(0.5):.2f} / {screened.percentile(0.5):.2f} ms "
            f"| {plain.percentile(0.99):.2f} / {screened.percentile(0.99):.2f} ms "
            f"| {plain.failed} / {screened.failed} "
            f"| {plain.kamailio_cpu:.0%} / {screened.kamailio_cpu:.0%} "
            f"| {screened.callguard_cpu:.0%} "
            f"| {plain.sipp_cpu:.0%} / {screened.sipp_cpu:.0%} "
            f"| {plain.machine_busy:.0%} / {screened.machine_busy:.0%} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="calls at each rate")
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--keep", action="store_true", help="keep sipp's and Kamailio's files")
    args = parser.parse_args()
    rates = " ".join(map(str, args.rates))
    print(f"$ python loadtest/sip_bench.py --seconds {args.seconds:g} --rates {rates}")
    print(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="sip-bench-"))
    try:
        with fresh_data_dir() as data_dir:
            make_database(data_dir)
            cli = Cli(ENTRY_POINTS["callguard"], data_dir, work)
            admin = cli.create_key("admin", "bench admin")
            client = cli.create_key("client", "switch")
            with cli.serve(free_port()) as server:
                callers = seed(server, admin, client)
                postgres = postmaster_pid(data_dir)
                callguard = [psutil.Process(server.process.pid)]
                callguard += [psutil.Process(postgres)] if postgres else []
                env = {"CALLGUARD_URL": server.url, "CALLGUARD_KEY": client}
                pairs, hung = asyncio.run(
                    bench(work, env, callguard, callers, args.rates, args.seconds)
                )
    finally:
        if args.keep:
            print(f"files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(table(pairs))
    print(
        "CPU: share of one core over the run; machine busy: share of all cores (sipp included); "
        "unanswered: calls with no answer past 100 Trying."
    )
    for _, screened in pairs:
        counts = ", ".join(f"{name} {count:g}" for name, count in sorted(screened.outcomes.items()))
        print(f"  Kamailio's counters after {screened.rate}/s with screening: {counts}")
    print(
        f"\nFail-open under load, callguard accepting connections and never answering, "
        f"{HUNG_RATE} calls/s: post-dial delay p50 {hung.percentile(0.5):.2f} ms, "
        f"p90 {hung.percentile(0.9):.2f} ms, p99 {hung.percentile(0.99):.2f} ms, "
        f"max {max(hung.delays) * 1000:.2f} ms; {len(hung.delays)} calls measured, "
        f"{hung.failed} unanswered."
    )
    counts = ", ".join(f"{name} {count:g}" for name, count in sorted(hung.outcomes.items()))
    print(f"  Kamailio's counters: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
