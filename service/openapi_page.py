"""The API's documentation page: the OpenAPI document rendered as one self-contained HTML page.

No scripts, fonts or styles from elsewhere: it must read the same on a machine without internet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from html import escape
from typing import Any

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_CODE = re.compile(r"`([^`]+)`")
_CODE_HTML = r"<code>\1</code>"

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 2rem;
       color: #1d1d1f; }
h1 { margin-bottom: 0; } h2 { border-bottom: 2px solid #ddd; margin-top: 2.5rem; }
h3 { margin: 2rem 0 .3rem; font-size: 1.05rem; }
code, .path { font-family: ui-monospace, monospace; font-size: .92em; }
.op { border: 1px solid #ddd; border-radius: 6px; padding: .2rem 1rem .8rem; margin: 1rem 0; }
.method { display: inline-block; min-width: 4.2rem; text-align: center; border-radius: 4px;
          color: #fff; font-weight: 600; font-size: .85rem; padding: .1rem .4rem; }
.get { background: #2f6fb0; } .post { background: #2e8540; } .put { background: #a86b00; }
.delete { background: #b0302f; }
.role { color: #666; font-size: .85rem; margin-left: .5rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid #eee;
         padding: .25rem .5rem; }
th { background: #f6f6f6; font-weight: 600; }
nav ul { columns: 2; padding-left: 1.2rem; } p { margin: .4rem 0; }
"""


def _text(text: str) -> str:
    """Plain text with `code` spans and paragraphs, escaped."""
    paragraphs = [part.replace("\n", " ") for part in text.strip().split("\n\n") if part]
    return "".join("<p>" + _CODE.sub(_CODE_HTML, escape(part)) + "</p>" for part in paragraphs)


def _anchor(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts)).strip("-").lower()


def _ref_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def describe(schema: Mapping[str, Any]) -> str:
    """A schema in a few words of HTML: its type and its limits."""
    name = _ref_name(schema)
    if name is not None:
        return f'<a href="#schema-{_anchor(name)}">{escape(name)}</a>'
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(describe(option) for option in schema[key])
    if "allOf" in schema:
        return " and ".join(describe(part) for part in schema["allOf"] if _ref_name(part))
    if "const" in schema:
        return f"<code>{escape(json.dumps(schema['const'], ensure_ascii=False))}</code>"
    if "enum" in schema:
        return "one of " + ", ".join(
            f"<code>{escape(str(value))}</code>" for value in schema["enum"]
        )
    kind = schema.get("type", "any")
    words = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if "items" in schema:
        words = f"array of {describe(schema['items'])}"
    limits = []
    if "format" in schema:
        limits.append(str(schema["format"]))
    if "maxLength" in schema:
        low = schema.get("minLength", 0)
        limits.append(
            f"{low}-{schema['maxLength']} characters"
            if low
            else f"at most {schema['maxLength']} characters"
        )
    if "minimum" in schema:
        high = schema.get("maximum")
        limits.append(
            f"{schema['minimum']}-{high}" if high is not None else f"at least {schema['minimum']}"
        )
    if "maxItems" in schema:
        limits.append(f"at most {schema['maxItems']} items")
    if "pattern" in schema:
        limits.append(
            "not blank" if "\\s" in schema["pattern"] else f"matching {schema['pattern']}"
        )
    if "default" in schema:
        limits.append(f"default {schema['default']}")
    return escape(words) + (f" <small>({escape(', '.join(limits))})</small>" if limits else "")


def _fields(schema: Mapping[str, Any]) -> str:
    """An object's fields as a table; other schemas in a line."""
    if schema.get("type") != "object" or "properties" not in schema:
        return f"<p>{describe(schema)}</p>"
    required = set(schema.get("required", ()))
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td>{describe(field)}</td>"
        f"<td>{'yes' if name in required else 'no'}</td>"
        f"<td>{_text(_description(field))}</td></tr>"
        for name, field in schema["properties"].items()
    )
    closed = " No other fields." if schema.get("additionalProperties") is False else ""
    return (
        "<table><tr><th>field</th><th>type</th><th>required</th><th>about</th></tr>"
        f"{rows}</table>{_text(closed) if closed else ''}"
    )


def _description(field: Mapping[str, Any]) -> str:
    """A field's description, also of one that may be null (msgspec puts it in the anyOf)."""
    for branch in [field, *field.get("anyOf", ())]:
        if "description" in branch:
            return str(branch["description"])
    return ""


def _operations(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                shared = item.get("parameters", [])
                operation = item[method]
                yield (
                    path,
                    method,
                    {**operation, "parameters": shared + operation.get("parameters", [])},
                )


def _response_schema(spec: Mapping[str, Any], response: Mapping[str, Any]) -> Mapping[str, Any]:
    name = _ref_name(response)
    return spec["components"]["responses"][name] if name else response


def _operation(spec: Mapping[str, Any], path: str, method: str, op: Mapping[str, Any]) -> str:
    role = op.get("x-role")
    out = [
        f'<div class="op" id="{_anchor(method, path)}"><h3>'
        f'<span class="method {method}">{method.upper()}</span> <span class="path">{escape(path)}'
        f'</span><span class="role">{escape(role + " key") if role else "no key"}</span></h3>',
        f"<p><strong>{escape(op['summary'])}</strong></p>",
        _text(op.get("description", "")),
    ]
    if op["parameters"]:
        out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>about</th></tr>")
        for parameter in op["parameters"]:
            required = " (required)" if parameter.get("required") else ""
            out.append(
                f"<tr><td><code>{escape(parameter['name'])}</code>{required}</td>"
                f"<td>{escape(parameter['in'])}</td><td>{describe(parameter['schema'])}</td>"
                f"<td>{_text(parameter.get('description', ''))}</td></tr>"
            )
        out.append("</table>")
    body = op.get("requestBody")
    if body is not None:
        optional = "" if body.get("required") else " (optional)"
        if "description" in body:
            out.append(_text(body["description"]))
        for media_type, content in body["content"].items():
            out.append(f"<p>Body{optional}: <code>{escape(media_type)}</code></p>")
            name = _ref_name(content["schema"])  # a declared body: its fields shown here
            out.append(_fields(spec["components"]["schemas"][name] if name else content["schema"]))
            if "example" in content:
                example = content["example"]
                text = (
                    example if isinstance(example, str) else json.dumps(example, ensure_ascii=False)
                )
                out.append(f"<pre><code>{escape(text)}</code></pre>")
    out.append("<table><tr><th>status</th><th>body</th><th>when</th></tr>")
    for status, response in op["responses"].items():
        response = _response_schema(spec, response)
        bodies = [
            f"<code>{escape(media_type)}</code> {describe(content['schema'])}"
            for media_type, content in response.get("content", {}).items()
        ]
        out.append(
            f"<tr><td>{escape(status)}</td><td>{'<br>'.join(bodies) or 'none'}</td>"
            f"<td>{_text(response['description'])}</td></tr>"
        )
    out.append("</table></div>")
    return "".join(out)


def render(spec: Mapping[str, Any]) -> str:
    """The whole page for an OpenAPI document."""
    info = spec["info"]
    operations = list(_operations(spec))
    out = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(info['title'])} API</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(info['title'])} API</h1><p>{escape(info.get('summary', ''))}</p>",
        _text(info.get("description", "")),
        '<p>The machine-readable description: <a href="/openapi.json">/openapi.json</a> '
        f"(OpenAPI {escape(spec['openapi'])}).</p>",
        "<nav><h2>Calls</h2><ul>",
    ]
    for path, method, _op in operations:
        out.append(
            f'<li><a href="#{_anchor(method, path)}"><code>{method.upper()} {escape(path)}'
            "</code></a></li>"
        )
    out.append("</ul></nav>")
    for tag in spec.get("tags", []):
        out.append(
            f"<h2>{escape(tag['name'].capitalize())}</h2>{_text(tag.get('description', ''))}"
        )
        for path, method, op in operations:
            if tag["name"] in op.get("tags", ()):
                out.append(_operation(spec, path, method, op))
    out.append("<h2>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        out.append(f'<h3 id="schema-{_anchor(name)}">{escape(name)}</h3>')
        out.append(_text(schema.get("description", "")))
        out.append(_fields(schema))
    out.append("</body></html>")
    return "\n".join(out)
