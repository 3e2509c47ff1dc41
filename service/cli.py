"""The `callguard` command: argument parsing only; the work is done by the rest of the package."""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

import asyncpg

from . import import_client, lists_client, logs, store, workers
from .api.allowlist import MAX_OWNER_LENGTH
from .api.imports import MAX_SOURCE_LENGTH
from .app import create_app, ready_message, run
from .auth import RESERVED_SOURCE_PREFIX, TRUSTS, Role, hash_key, new_key, reserved_source
from .clock import utc_now
from .config import Config
from .e164 import InvalidNumber, normalize
from .embedded import DatabaseUnavailable, check_database, database_url
from .filter import BACKENDS
from .reporters import ReporterKeyError
from .text import TextError, identifier

log = logging.getLogger(__name__)

CLI_ACTOR = store.audit.Actor(None, "cli")
MAX_KEY_NAME_LENGTH = 200
"""Moderation done on the command line; the audit log names it so."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    config = Config.from_env(
        data_dir=args.data_dir,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        filter_backend=getattr(args, "filter_backend", None),
    )
    logs.configure(verbose=getattr(args, "verbose", False))
    command: Callable[[Config, argparse.Namespace], int] = args.command
    try:
        return command(config, args)
    except (DatabaseUnavailable, ReporterKeyError, OSError) as err:
        # What the operator can act on, in one line: a busy port, a wrong data dir, a
        # database out of reach. A traceback would bury it.
        print(f"callguard: {err}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callguard", description="Caller-ID scam-number lookup service."
    )
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument(
        "--data-dir",
        type=Path,
        help="the embedded Postgres's directory when DATABASE_URL is unset (default ./.callguard)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[data_dir], help="run the HTTP service")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--filter-backend", choices=sorted(BACKENDS), help="Bloom filter library")
    serve.add_argument(
        "--verbose",
        action="store_true",
        help="also log what the libraries say (pgserver, initdb, aiohttp) on stderr",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help=f"processes sharing the port (SO_REUSEPORT), 1 to {workers.MAX_WORKERS} (default 1)",
    )
    serve.set_defaults(command=_serve)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = keys.add_parser("create", parents=[data_dir], help="make a key; prints it last")
    create.add_argument("--role", required=True, choices=[role.name.lower() for role in Role])
    create.add_argument(
        "--name", required=True, type=_name, help="who holds the key, e.g. an app's name"
    )
    create.add_argument(
        "--source",
        dest="sources",
        action="append",
        type=_source,
        help="a source an operator key may import under; repeat for several (operators need one)",
    )
    create.add_argument(
        "--trust",
        choices=TRUSTS,
        default="community",
        help="attesting: the app verifies its users' own phone numbers (OTP, the operator's "
        "network) and may send them as reporter_phone; community (the default): it may not",
    )
    create.add_argument(
        "--reports-per-day",
        type=_positive,
        metavar="N",
        help="reports and not-scam answers the key may send a day (default: "
        "CALLGUARD_REPORTS_PER_KEY_PER_DAY)",
    )
    create.set_defaults(command=_keys_create_command)
    trust = keys.add_parser(
        "trust", parents=[data_dir], help="set whether a key may vouch for reporters' phones"
    )
    trust.add_argument("key_id", type=_key_id, metavar="ID", help="the key's id (keys list)")
    trust.add_argument("trust", choices=TRUSTS)
    trust.add_argument("--reports-per-day", type=_positive, metavar="N", help="also set its cap")
    trust.set_defaults(command=_with_pool(_keys_trust))
    sources = keys.add_parser(
        "sources", parents=[data_dir], help="set the sources an operator key may import under"
    )
    sources.add_argument("key_id", type=_key_id, metavar="ID", help="the key's id (keys list)")
    sources.add_argument(
        "--source",
        dest="sources",
        action="append",
        required=True,
        type=_source,
        help="a source it may import under; repeat for several (replaces its list)",
    )
    sources.set_defaults(command=_with_pool(_keys_sources))
    listing = keys.add_parser("list", parents=[data_dir], help="list keys (never the keys)")
    listing.set_defaults(command=_with_pool(_keys_list))
    revoke = keys.add_parser("revoke", parents=[data_dir], help="revoke a key at once")
    revoke.add_argument("key", metavar="KEY_OR_ID", help="the key itself, or its id")
    revoke.set_defaults(command=_with_pool(_keys_revoke))

    allowlist = commands.add_parser("allowlist", help="manage verified numbers").add_subparsers(
        required=True, metavar="ACTION"
    )
    load = allowlist.add_parser(
        "load", parents=[data_dir], help="verify the numbers in a CSV (number,owner[,note])"
    )
    load.add_argument("file", type=Path, help="e.g. data/official_numbers.csv")
    load.set_defaults(command=_with_pool(_allowlist_load))

    imports = commands.add_parser(
        "import", help="list the numbers in a CSV or NDJSON file as scams (operator key)"
    )
    imports.add_argument(
        "file",
        type=Path,
        help="a CSV or NDJSON file, optionally gzipped; a name other than .csv, .ndjson or "
        ".jsonl is read by its first character ({ for NDJSON)",
    )
    imports.add_argument(
        "--url",
        required=True,
        type=_service_url,
        help="the service, e.g. http://127.0.0.1:8080 (no scheme: http)",
    )
    imports.add_argument(
        "--key",
        help="an operator or admin key; better in CALLGUARD_KEY, where ps and the shell's "
        "history do not see it",
    )
    imports.add_argument("--source", help="who the list comes from (default: the file's name)")
    imports.add_argument("--idempotency-key", help="a retry with the same key is imported once")
    imports.add_argument(
        "--progress", action="store_true", help="show progress even if stderr is not a terminal"
    )
    imports.set_defaults(command=_import, data_dir=None)

    lists = commands.add_parser(
        "lists", help="keep a local copy of the scam and verified lists; check numbers offline"
    ).add_subparsers(required=True, metavar="ACTION")
    lists_sync = lists.add_parser(
        "sync", help="bring the local copy up to date (safe to run every minute from cron)"
    )
    lists_sync.add_argument(
        "--url",
        required=True,
        type=_service_url,
        help="the service, e.g. http://127.0.0.1:8080 (no scheme: http)",
    )
    lists_sync.add_argument(
        "--key", help="any client key; better in CALLGUARD_KEY, where ps does not see it"
    )
    lists_sync.add_argument(
        "--dir", required=True, type=Path, help="the local copy's directory (made if missing)"
    )
    lists_sync.add_argument(
        "--list",
        dest="names",
        action="append",
        choices=lists_client.LIST_NAMES,
        help="a list to sync; repeat for several (default: all)",
    )
    lists_sync.add_argument(
        "--force", action="store_true", help="sync now, even before the wait the service asked"
    )
    lists_sync.set_defaults(command=_lists_sync, data_dir=None)
    lists_check = lists.add_parser(
        "check", help="a number's verdict from the local copy, with no network"
    )
    lists_check.add_argument("number", help="a phone number in any usual form")
    lists_check.add_argument("--dir", required=True, type=Path, help="the local copy's directory")
    lists_check.set_defaults(command=_lists_check, data_dir=None)
    return parser


def _name(text: str) -> str:
    try:
        return identifier(text, "name", MAX_KEY_NAME_LENGTH)
    except TextError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 < value <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"must be from 1 to {2**31 - 1}")
    return value


def _key_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 18):
        raise argparse.ArgumentTypeError("must be a key's id, as `keys list` shows it")
    return int(text)


def _source(text: str) -> str:
    try:
        source = identifier(text, "source", MAX_SOURCE_LENGTH)
    except TextError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    if reserved_source(source):
        raise argparse.ArgumentTypeError(
            f"sources beginning {RESERVED_SOURCE_PREFIX!r} are reserved for moderators"
        )
    return source


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= workers.MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {workers.MAX_WORKERS}")
    return count


def _service_url(text: str) -> str:
    try:
        return import_client.service_url(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _import(config: Config, args: argparse.Namespace) -> int:
    key = args.key or config.api_key
    if not key:
        print("callguard import: no key: set CALLGUARD_KEY to an operator key", file=sys.stderr)
        return 2
    show_progress = args.progress or sys.stderr.isatty()
    return import_client.run_import(
        args.file, args.url, key, args.source, args.idempotency_key, show_progress
    )


def _lists_sync(config: Config, args: argparse.Namespace) -> int:
    key = args.key or config.api_key
    if not key:
        print("callguard lists sync: no key: set CALLGUARD_KEY to a client key", file=sys.stderr)
        return 2
    names = args.names or lists_client.LIST_NAMES
    return lists_client.run_sync(args.url, key, args.dir, names, args.force)


def _lists_check(config: Config, args: argparse.Namespace) -> int:
    return lists_client.run_check(args.number, args.dir)


def _serve(config: Config, args: argparse.Namespace) -> int:
    if args.workers > 1 and config.port == 0:
        print("callguard serve: --workers needs a fixed --port, not 0", file=sys.stderr)
        return 2
    # Before the database is started or made: a busy port is the commonest failure.
    workers.check_port_free(config.host, config.port)
    if args.workers > 1:
        return workers.serve(config, args.workers, args.verbose)
    with database_url(config.database_url, config.data_dir) as url:
        asyncio.run(check_database(url, need_tables=False))
        app = create_app(replace(config, database_url=url))
        run(app, config, on_ready=lambda served_on: log.info(ready_message(served_on, config)))
    return 0


def _with_pool(
    action: Callable[[asyncpg.Pool, argparse.Namespace], Awaitable[int]],
) -> Callable[[Config, argparse.Namespace], int]:
    """Run an async action with a one-connection pool on the service's database."""

    def command(config: Config, args: argparse.Namespace) -> int:
        async def run(url: str) -> int:
            await check_database(url, need_tables=True)
            async with await store.database.create_pool(url, 1, 1) as pool:
                async with pool.acquire() as conn:
                    await store.database.apply_schema(conn)
                return await action(pool, args)

        with database_url(config.database_url, config.data_dir, create=False) as url:
            return asyncio.run(run(url))

    return command


def _keys_create_command(config: Config, args: argparse.Namespace) -> int:
    # Checked before the database is started, as argparse's own checks are.
    if args.role == "operator" and not args.sources:
        print("callguard keys create: an operator key needs --source (repeatable)", file=sys.stderr)
        return 2
    if args.role != "operator" and args.sources:
        print("callguard keys create: --source is for operator keys only", file=sys.stderr)
        return 2
    return _with_pool(_keys_create)(config, args)


async def _keys_create(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    sources = list(dict.fromkeys(args.sources or ()))
    key = new_key()
    api_key = await store.keys.create(
        pool, args.name, args.role, hash_key(key), sources, args.trust, args.reports_per_day
    )
    print(
        f"created key {api_key.id} ({api_key.role}, {api_key.trust}) for {api_key.name}; "
        "it is shown only once:"
    )
    print(key)
    return 0


async def _keys_list(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    print(f"{'id':>6}  {'role':<8}  {'trust':<10}  {'created':<20}  {'revoked':<20}  name")
    for key in await store.keys.list_keys(pool):
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "-"
        sources = f"  [sources: {', '.join(key.sources)}]" if key.sources else ""
        cap = f"  [{key.reports_per_day} reports a day]" if key.reports_per_day else ""
        print(
            f"{key.id:>6}  {key.role:<8}  {key.trust:<10}  {created:<20}  {revoked:<20}  "
            f"{key.name}{sources}{cap}"
        )
    return 0


async def _keys_sources(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    sources = list(dict.fromkeys(args.sources))
    changed = await store.keys.set_sources(pool, args.key_id, sources, CLI_ACTOR, utc_now())
    if changed is None:
        print(f"no active operator key has id {args.key_id}", file=sys.stderr)
        return 1
    print(f"key {changed.id} of {changed.name} may import under: {', '.join(changed.sources)}")
    return 0


async def _keys_trust(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    changed = await store.keys.set_trust(
        pool, args.key_id, args.trust, args.reports_per_day, CLI_ACTOR, utc_now()
    )
    if changed is None:
        print(f"no active key has id {args.key_id}", file=sys.stderr)
        return 1
    cap = changed.reports_per_day or "the default number of"
    print(f"key {changed.id} of {changed.name} is {changed.trust}; it may send {cap} reports a day")
    return 0


async def _keys_revoke(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    # An id is a positive bigint written in ASCII digits; anything else can only be a key.
    is_id = args.key.isascii() and args.key.isdigit() and len(args.key) <= 18
    key_id = int(args.key) if is_id else None
    revoked = await store.keys.revoke(pool, key_id, hash_key(args.key), CLI_ACTOR, utc_now())
    if revoked is None:
        print(f"no active key matches {args.key!r}", file=sys.stderr)
        return 1
    print(f"revoked key {revoked.id} ({revoked.role}) of {revoked.name}")
    return 0


async def _allowlist_load(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    try:
        entries, errors = _read_allowlist(args.file)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        print(f"cannot read {args.file}: {err}", file=sys.stderr)
        return 1
    if errors:
        print(*errors, f"nothing loaded: {len(errors)} bad row(s)", sep="\n", file=sys.stderr)
        return 1
    await store.allowlist.load(pool, entries, CLI_ACTOR, utc_now())
    print(f"verified {len(entries)} number(s) from {args.file}")
    return 0


def _read_allowlist(path: Path) -> tuple[list[tuple[int, str, str | None]], list[str]]:
    """The CSV's (number, owner, note) rows, and a message per bad row (line numbers count
    the header as line 1)."""
    entries: list[tuple[int, str, str | None]] = []
    errors: list[str] = []
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        missing = {"number", "owner"} - set(reader.fieldnames or ())
        if missing:
            return [], [f"line 1: missing column(s) {', '.join(sorted(missing))}"]
        for line, row in enumerate(reader, start=2):
            note = (row.get("note") or "").strip() or None
            try:
                number = normalize(row.get("number") or "")
            except InvalidNumber as err:
                errors.append(f"line {line}: {row.get('number')!r}: {err}")
                continue
            try:
                owner = identifier(row.get("owner") or "", "owner", MAX_OWNER_LENGTH)
            except TextError as err:
                errors.append(f"line {line}: {err}")
                continue
            entries.append((number, owner, note))
    return entries, errors
