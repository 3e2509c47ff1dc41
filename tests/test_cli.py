"""The real `callguard` command, run as subprocesses on the embedded Postgres."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.processes import (
    COMMAND_TIMEOUT,
    ENTRY_POINTS,
    FEED_TIMEOUT,
    NUMBER,
    TEST_SOURCES,
    Cli,
    KeyRow,
    free_port,
)
from tests.waiting import eventually_sync

pytestmark = pytest.mark.slow  # starts `callguard` processes, each on a Postgres of its own


def test_python_m_service_is_the_callguard_command() -> None:
    helps = [
        subprocess.run(
            [*argv, "keys", "create", "--help"],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=True,
        ).stdout
        for argv in ENTRY_POINTS.values()
    ]

    assert helps[0] == helps[1]
    assert helps[0].startswith("usage: callguard keys create")


def test_keys_create_prints_the_key_alone_on_the_last_line(cli: Cli) -> None:
    stdout = cli.ok("keys", "create", "--role", "client", "--name", "app1")

    key = stdout.splitlines()[-1]
    assert key.startswith("cg_")
    assert key == key.strip() and " " not in key
    assert stdout.endswith(key + "\n")


def test_keys_list_shows_id_role_and_name_but_never_the_key(cli: Cli) -> None:
    client_key = cli.create_key("client", "app1")
    operator_key = cli.create_key("operator", "telco")

    listing = cli.ok("keys", "list")

    assert client_key not in listing
    assert operator_key not in listing
    assert "cg_" not in listing
    assert cli.list_keys() == [
        KeyRow(id=1, role="client", revoked=False, name="app1"),
        KeyRow(id=2, role="operator", revoked=False, name="telco", sources=TEST_SOURCES),
    ]


def test_keys_revoke_by_id_and_by_key_text(cli: Cli) -> None:
    cli.create_key("client", "by-id")
    by_text = cli.create_key("client", "by-text")
    cli.create_key("client", "kept")
    ids = {row.name: row.id for row in cli.list_keys()}

    cli.ok("keys", "revoke", str(ids["by-id"]))
    cli.ok("keys", "revoke", by_text)

    revoked = {row.name: row.revoked for row in cli.list_keys()}
    assert revoked == {"by-id": True, "by-text": True, "kept": False}


def test_keys_revoke_fails_for_an_unknown_or_already_revoked_key(cli: Cli) -> None:
    key = cli.create_key()

    unknown = [
        cli.run("keys", "revoke", text)
        for text in ("999", "99999999999999999999", "²", "cg_no-such-key")
    ]
    cli.ok("keys", "revoke", key)
    again = cli.run("keys", "revoke", key)

    for result in [*unknown, again]:
        assert result.returncode != 0
        assert "no active key" in result.stderr
    assert [row.revoked for row in cli.list_keys()] == [True]


@pytest.mark.parametrize(
    ("role", "name", "words"),
    [
        ("superuser", "app1", "invalid choice: 'superuser'"),
        ("client", " ", "must not be empty"),
        ("client", "\u200b\u2060", "must not be empty"),  # invisible only
    ],
)
def test_keys_create_rejects_an_unknown_role_or_empty_name(
    first_run: Cli, role: str, name: str, words: str
) -> None:
    result = first_run.run("keys", "create", "--role", role, "--name", name)

    assert result.returncode == 2
    assert words in result.stderr
    assert "cg_" not in result.stdout
    assert not first_run.data_dir.exists()  # rejected before the database was started


@pytest.mark.parametrize(
    ("role", "sources", "words"),
    [
        ("operator", [], "an operator key needs --source"),
        ("client", ["viettel"], "--source is for operator keys only"),
        ("admin", ["viettel"], "--source is for operator keys only"),
        ("operator", ["viettel", "admin:staff"], "reserved for moderators"),
        ("operator", ["Admin:Staff"], "reserved for moderators"),
        ("operator", ["viet\x07tel"], "control character"),
    ],
)
def test_keys_create_takes_sources_for_operator_keys_only(
    first_run: Cli, role: str, sources: list[str], words: str
) -> None:
    flags = [arg for source in sources for arg in ("--source", source)]
    result = first_run.run("keys", "create", "--role", role, "--name", "telco", *flags)

    assert result.returncode == 2
    assert words in result.stderr
    assert "cg_" not in result.stdout
    assert not first_run.data_dir.exists()  # rejected before the database was started


def test_keys_sources_replaces_an_operator_keys_sources(cli: Cli) -> None:
    created = cli.ok(
        "keys", "create", "--role", "operator", "--name", "telco", "--source", "viettel"
    )
    cli.create_key("client", "app1")
    assert [row.sources for row in cli.list_keys()] == [("viettel",), ()]

    cli.ok("keys", "sources", "1", "--source", "mobifone", "--source", "vnpt")
    assert [row.sources for row in cli.list_keys()] == [("mobifone", "vnpt"), ()]
    for not_an_operator in ("2", "3"):
        result = cli.run("keys", "sources", not_an_operator, "--source", "viettel")
        assert result.returncode == 1
        assert "no active operator key" in result.stderr
    assert created.splitlines()[-1] not in cli.ok("keys", "list")


def test_report_and_key_survive_a_restart(callguard: Cli) -> None:
    key = callguard.create_key("client", "app1")
    report = {"number": NUMBER, "category": "online_loan", "reporter": "r1"}

    with callguard.serve(free_port()) as server:
        status, body = server.request("POST", "/v1/reports", key, report)
        assert status == 201, body
        assert body["verdict"] == "suspicious"
        assert server.terminate() == 0, server.log()
    assert not (callguard.data_dir / "postmaster.pid").exists(), "embedded Postgres left running"

    with callguard.serve(free_port()) as server:
        status, body = server.request("GET", f"/v1/numbers/{NUMBER}", key)
        assert status == 200, body
        assert body["verdict"] == "suspicious"
        assert body["report_count"] == 1
        assert body["categories"] == ["online_loan"]
        assert server.terminate() == 0, server.log()


def test_revoking_a_key_locks_it_out_of_the_running_server(callguard: Cli) -> None:
    key = callguard.create_key("client", "app1")
    (key_id,) = (row.id for row in callguard.list_keys())

    with callguard.serve(free_port()) as server:
        for _ in range(2):  # the second answer may come from the server's key cache
            status, body = server.request("GET", f"/v1/numbers/{NUMBER}", key)
            assert status == 200, body

        callguard.ok("keys", "revoke", str(key_id))

        def refused() -> bool:
            status = server.request("GET", f"/v1/numbers/{NUMBER}", key)[0]
            assert status in (200, 401), status
            return status == 401

        eventually_sync(refused, FEED_TIMEOUT, lambda: f"the revoked key refused:\n{server.log()}")
        assert server.process.poll() is None  # `keys revoke` left the shared Postgres running
        assert server.request("GET", "/readyz")[0] == 200


def test_allowlist_load_verifies_numbers_on_a_running_server(
    callguard: Cli, repo_root: Path
) -> None:
    key = callguard.create_key("admin", "moderator")
    hotline = "/v1/numbers/02513685134"
    with callguard.serve(free_port()) as server:
        assert server.request("GET", hotline, key)[1]["verdict"] == "unknown"

        out = callguard.ok("allowlist", "load", str(repo_root / "data" / "official_numbers.csv"))
        assert "verified 1 number(s)" in out

        # The running server learns of the number through the change feed, not a restart.
        def verified() -> dict[str, Any] | None:
            body: dict[str, Any] = server.request("GET", hotline, key)[1]
            return body if body["verdict"] == "verified" else None

        body = eventually_sync(verified, FEED_TIMEOUT, lambda: f"verified:\n{server.log()}")
        assert body["number"] == "+842513685134"
        assert "Công an tỉnh Đồng Nai" in body["owner"]
        status, audit = server.request("GET", "/v1/audit", key)
        assert status == 200
        assert [(e["action"], e["actor"], e["number"]) for e in audit["entries"]] == [
            ("allowlist_add", "cli", "+842513685134")
        ]


def test_allowlist_load_loads_nothing_from_a_file_with_a_bad_row(
    callguard: Cli, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("number,owner\n0912345678,Ngân hàng A\nnot-a-number,B\n0987654321,\u200b\n")
    result = callguard.run("allowlist", "load", str(bad))
    assert result.returncode == 1
    assert "line 3: 'not-a-number'" in result.stderr
    assert "line 4: 'owner' must not be empty" in result.stderr
    assert "nothing loaded" in result.stderr

    missing = tmp_path / "missing.csv"
    missing.write_text("phone,name\n0912345678,A\n")
    result = callguard.run("allowlist", "load", str(missing))
    assert result.returncode == 1
    assert "missing column(s) number, owner" in result.stderr

    key = callguard.create_key("client", "app")
    with callguard.serve(free_port()) as server:
        body = server.request("GET", "/v1/numbers/0912345678", key)[1]
        assert body["verdict"] == "unknown"  # the good row of the bad file was not loaded


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed on stderr."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "create", "--role", "client", "--name", "app1"],
        ["keys", "list"],
        ["keys", "revoke", "1"],
        ["allowlist", "load", "official_numbers.csv"],
    ],
)
def test_no_command_but_serve_makes_a_database(first_run: Cli, command: list[str]) -> None:
    result = first_run.run(*command)

    error = one_line_error(result)
    assert f"no database in {first_run.data_dir}" in error
    assert "callguard serve" in error
    assert "cg_" not in result.stdout
    assert not first_run.data_dir.exists()


def test_commands_name_an_unreachable_database_url_without_its_password(callguard: Cli) -> None:
    url = f"postgresql://callguard:s3cret@127.0.0.1:{free_port()}/callguard"

    results = [
        callguard.run("keys", "list", DATABASE_URL=url),
        callguard.run("serve", "--port", str(free_port()), DATABASE_URL=url),
    ]

    for result in results:
        error = one_line_error(result)
        assert "cannot reach the database at postgresql://callguard:***@127.0.0.1" in error
        assert "s3cret" not in result.stderr + result.stdout


def test_serve_fails_in_one_line_on_a_busy_port(first_run: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = first_run.run("serve", "--port", str(port))

    error = one_line_error(result)
    assert error == f"callguard: cannot listen on 127.0.0.1 port {port}: Address already in use\n"
    assert not first_run.data_dir.exists()  # failed before the database was made


def test_serve_refuses_a_data_dir_that_is_not_empty(first_run: Cli) -> None:
    first_run.data_dir.mkdir()
    (first_run.data_dir / "notes.txt").write_text("not a database\n")

    result = first_run.run("serve", "--port", str(free_port()))

    error = one_line_error(result)
    assert f"the data dir {first_run.data_dir} is not empty and holds no database" in error
    assert sorted(path.name for path in first_run.data_dir.iterdir()) == ["notes.txt"]


def test_serve_says_one_line_when_ready_and_nothing_else(first_run: Cli) -> None:
    port = free_port()

    with first_run.serve(port) as server:
        assert server.terminate() == 0, server.log()

    log = server.log()
    said = [line for line in map(json.loads, log.splitlines()) if "route" not in line]
    assert said[0]["message"] == (
        f"callguard is serving on http://127.0.0.1:{port}, data in the embedded Postgres in "
        f"{first_run.data_dir}; next, make a key: callguard keys create --role client "
        f"--name NAME --data-dir {first_run.data_dir}"
    )
    assert [line["message"] for line in said[1:]] == []
    assert "Running on" not in log


def test_serve_verbose_also_shows_what_the_libraries_say(first_run: Cli) -> None:
    with first_run.serve(free_port(), "--verbose") as server:
        assert server.terminate() == 0, server.log()

    loggers = {line.get("logger") for line in map(json.loads, server.log().splitlines())}
    assert {"pgserver", "callguard.cli"} <= loggers


def test_keys_are_community_unless_made_attesting(cli: Cli) -> None:
    created = cli.ok(
        "keys", "create", "--role", "client", "--name", "otp-app", "--trust", "attesting"
    )
    assert "(client, attesting)" in created
    cli.ok("keys", "create", "--role", "client", "--name", "web", "--reports-per-day", "5000")
    assert [(row.trust, row.reports_per_day) for row in cli.list_keys()] == [
        ("attesting", None),
        ("community", 5000),
    ]
    assert "is community" in cli.ok("keys", "trust", "1", "community", "--reports-per-day", "9")
    first = cli.list_keys()[0]
    assert (first.trust, first.reports_per_day) == ("community", 9)
    missing = cli.run("keys", "trust", "99", "attesting")
    assert missing.returncode == 1 and "no active key has id 99" in missing.stderr
    assert cli.run("keys", "trust", "1", "trusted").returncode == 2
    assert (
        cli.run(
            "keys", "create", "--role", "client", "--name", "x", "--reports-per-day", "0"
        ).returncode
        == 2
    )


def test_making_a_key_attesting_takes_effect_on_a_running_server_and_is_audited(
    callguard: Cli,
) -> None:
    app_key = callguard.create_key("client", "otp-app")
    admin = callguard.create_key("admin", "moderator")
    (app_id,) = (row.id for row in callguard.list_keys() if row.name == "otp-app")
    report = {
        "number": NUMBER,
        "category": "online_loan",
        "reporter": "r1",
        "reporter_phone": "0987000001",
    }
    with callguard.serve(free_port()) as server:
        status, body = server.request("POST", "/v1/reports", app_key, report)
        assert (status, body["type"]) == (403, "urn:callguard:problem:cannot-vouch")

        callguard.ok("keys", "trust", str(app_id), "attesting")

        def vouched() -> bool:
            status = server.request("POST", "/v1/reports", app_key, report)[0]
            assert status in (201, 403), status
            return status == 201

        eventually_sync(vouched, FEED_TIMEOUT, lambda: f"the key attesting:\n{server.log()}")
        status, audit = server.request("GET", "/v1/audit", admin)
        assert status == 200
        [entry] = audit["entries"]
        assert (entry["action"], entry["actor"], entry["detail"]["trust"]) == (
            "key_trust",
            "cli",
            "attesting",
        )
