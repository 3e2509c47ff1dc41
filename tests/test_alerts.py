"""deploy/: the Prometheus config and alert rules pass promtool, and use only what /metrics has."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import AppClient

Series = dict[str, list[dict[str, str]]]
"""Sample names in /metrics, each with the label sets it has."""
Selector = tuple[str, list[tuple[str, str, str]]]
"""A metric name and its label matchers: (label, operator, value)."""

MADE_BY_PROMETHEUS = {"up"}
"""Series Prometheus writes for each scrape; never in /metrics."""
PENDING: set[str] = set()
"""Used by the alerts but not yet exported: service/metrics.py is to add it. Remove a name
from here when it is (this test then says so)."""

STRING = r'"(?:[^"\\]|\\.)*"'
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
RANGES = re.compile(r"\[[^\]]*\]")
TOKENS = re.compile(
    rf"(?P<string>{STRING})"
    rf"|(?<![\w:.])(?P<name>[a-zA-Z_:][\w:]*)\s*(?P<matchers>\{{(?:[^}}\"]|{STRING})*\}})?"
)
"""Strings, skipped; names, with the matchers of a selector. Not after a digit: 5m, 1e3."""
MATCHER = re.compile(rf"(?P<label>\w+)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>{STRING})")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
LITERALS = re.compile(r"[\w/-]+")
"""A regex alternative with no special characters: a label value the scrape must have."""


@pytest.mark.slow  # runs promtool
@pytest.mark.parametrize(
    "command",
    [
        ["check", "rules", "deploy/alerts.yml"],
        ["check", "config", "deploy/prometheus.yml"],
        ["test", "rules", "deploy/alerts_test.yml"],
        # The SIP switch's alerts; tests/test_sip.py checks their series on Kamailio.
        ["check", "rules", "deploy/kamailio/alerts.yml"],
        ["test", "rules", "deploy/kamailio/alerts_test.yml"],
    ],
    ids=" ".join,
)
def test_promtool_accepts_the_deployment(
    repo_root: Path, tmp_path: Path, command: list[str]
) -> None:
    # In a copy of deploy/ holding the key file docker-compose.yml makes at its first start
    # (prometheus.yml names it, and promtool checks that it is there).
    deploy = shutil.copytree(repo_root / "deploy", tmp_path / "deploy")
    (deploy / "keys").mkdir()
    (deploy / "keys" / "metrics.key").write_text("cg_made-by-compose\n")
    try:
        result = subprocess.run(
            ["promtool", *command], cwd=tmp_path, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        pytest.fail("promtool is missing: install Debian's prometheus package, as .ci/run does")
    assert result.returncode == 0, result.stdout + result.stderr


def expressions(rules: str) -> list[str]:
    """Each rule's `expr`: written on its line, or as a `|` block of deeper-indented lines."""
    found = []
    lines = rules.splitlines()
    for i, line in enumerate(lines):
        head, key, value = line.partition("expr:")
        if not key or head.strip():
            continue
        value = value.strip()
        assert value[:1] not in "'\">", f"write expr plainly or as a | block: {line}"
        if value != "|":
            found.append(value)
            continue
        block = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= len(head):
                break
            block.append(following)
        found.append("\n".join(block))
    return found


def selectors(expr: str) -> list[Selector]:
    """Each series selector in a PromQL expression: its metric name and label matchers."""
    expr = RANGES.sub(" ", LABEL_LISTS.sub(" ", expr))
    found = []
    for token in TOKENS.finditer(expr):
        name = token["name"]
        if name is None or name in KEYWORDS or expr[token.end() :].startswith("("):
            continue  # a string, an operator, or a function
        matchers = [
            (m["label"], m["op"], re.sub(r"\\(.)", r"\1", m["value"][1:-1]))
            for m in MATCHER.finditer(token["matchers"] or "")
        ]
        found.append((name, matchers))
    return found


async def exported_series(
    client: AppClient, auth: dict[str, str], metrics_auth: dict[str, str]
) -> Series:
    """/metrics, read with a metrics key as Prometheus does, once each route the alerts
    name has been called."""
    await client.get("/v1/numbers/0912345678", headers=auth)
    await client.post("/v1/lookups", json={"numbers": ["0912345678"]}, headers=auth)
    for path in ("/healthz", "/readyz", "/metrics"):  # a request is counted once answered
        assert (await client.get(path, headers=metrics_auth)).status == 200
    response = await client.get("/metrics", headers=metrics_auth)
    assert response.status == 200
    series: Series = defaultdict(list)
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            series[sample.name].append(sample.labels)
    return series


def mismatches(selector: Selector, series: Series, jobs: set[str]) -> list[str]:
    """How a selector differs from what the service exports and Prometheus scrapes."""
    name, matchers = selector
    if name not in MADE_BY_PROMETHEUS and name not in series:
        return [f"{name} is not in /metrics"]
    found = []
    for label, op, value in matchers:
        if label == "instance":
            continue
        if label == "job":
            if op == "=" and value not in jobs:
                found.append(f'{name}{{job="{value}"}}: prometheus.yml has {jobs}')
            continue
        values = {labels[label] for labels in series.get(name, []) if label in labels}
        if not values:
            found.append(f"{name} has no label {label}")
        regex = op in ("=~", "!~")
        for one in value.split("|") if regex else [value]:
            if (LITERALS.fullmatch(one) or not regex) and one not in values:
                found.append(f'{name}{{{label}{op}"{value}"}}: no {label}="{one}"')
    return found


async def test_the_alerts_use_only_what_the_service_exports(
    client: AppClient, auth: dict[str, str], metrics_auth: dict[str, str], repo_root: Path
) -> None:
    deploy = repo_root / "deploy"
    rules = (deploy / "alerts.yml").read_text()
    jobs = set(re.findall(r"job_name:\s*(\S+)", (deploy / "prometheus.yml").read_text()))
    exprs = expressions(rules)
    assert len(exprs) == len(re.findall(r"^\s*- (?:alert|record):", rules, re.MULTILINE))
    series = await exported_series(client, auth, metrics_auth)

    problems = []
    pending_used = set()
    for expr in exprs:
        found = selectors(expr)
        assert found, f"no series selector found in {expr!r}"
        for selector in found:
            if selector[0] in PENDING:
                pending_used.add(selector[0])
            else:
                problems += mismatches(selector, series, jobs)
    assert not problems, "\n".join(problems)

    assert pending_used == PENDING, f"no alert uses {PENDING - pending_used}: drop it from PENDING"
    exported = PENDING & series.keys()
    assert not exported, f"{exported} is exported now: remove it from PENDING"
