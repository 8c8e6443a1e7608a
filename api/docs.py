"""``GET /docs``: the OpenAPI document as a plain HTML page, rendered on the server.

Swagger UI and ReDoc load their scripts from a CDN, which an offline or locked-down deployment cannot
reach; this page needs nothing but the spec flask-smorest generates from the schemas.
"""
from __future__ import annotations

import re
from html import escape
from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint

from .auth import public

blp = Blueprint("docs", __name__, description="Human-readable API documentation")

_STYLE = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2.5rem}h3{margin:1.5rem 0 .3rem}code{background:#f3f3f3;padding:0 .2rem}
.m{display:inline-block;min-width:4.5rem;font-weight:bold}table{border-collapse:collapse;margin:.3rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}.s{color:#666;font-size:.9em}"""


_LITERAL = re.compile(r"``(.+?)``")


def _text(text: str) -> str:
    """Docstring text as HTML: escaped, with ``literals`` as code."""
    return _LITERAL.sub(r"<code>\1</code>", escape(text))


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "oneOf" in schema:
        return " or ".join(_type(s) for s in schema["oneOf"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = " | ".join(kind)
    extra = f" ({escape(schema['format'])})" if "format" in schema else ""
    if "enum" in schema:
        extra += ": " + ", ".join(escape(str(v)) for v in schema["enum"] if v is not None)
    return escape(str(kind)) + extra


def _content_schema(body: dict[str, Any]) -> str:
    for media, content in (body.get("content") or {}).items():
        return f"{_type(content.get('schema', {}))} <span class=s>{escape(media)}</span>" if content.get("schema") \
            else f"<span class=s>{escape(media)}</span>"
    return ""


def render(spec: dict[str, Any]) -> str:
    """The spec as one HTML page: each operation, its parameters, body and answers; then the schemas."""
    info = spec.get("info", {})
    responses = spec.get("components", {}).get("responses", {})
    out = [f"<!doctype html><html><head><meta charset=utf-8><title>{escape(info.get('title', 'API'))} API</title>"
           f"<style>{_STYLE}</style></head><body><h1>{escape(info.get('title', 'API'))} API "
           f"<span class=s>{escape(str(info.get('version', '')))}</span></h1>"
           "<p>Send <code>Authorization: Bearer TOKEN</code> to every operation marked <b>token</b>. "
           "The machine-readable spec is at <a href=\"openapi.json\"><code>/openapi.json</code></a>. "
           "Every error is JSON: <code>{code, status, message, errors: {field: [messages]}}</code>.</p>"]
    for tag in spec.get("tags", []):
        out.append(f"<h2>{escape(tag['name'])}</h2><p>{escape(tag.get('description') or '')}</p>")
        for path, item in spec.get("paths", {}).items():
            for method, op in item.items():
                if method == "parameters" or tag["name"] not in op.get("tags", []):
                    continue
                auth = "token" if op.get("security") else "no token"
                out.append(f"<h3><span class=m>{method.upper()}</span><code>{escape(path)}</code> "
                           f"<span class=s>{auth}</span></h3><p>{_text(op.get('summary', ''))}</p>")
                if op.get("description"):
                    out.append(f"<p class=s>{_text(op['description'])}</p>")
                params = [*item.get("parameters", []), *op.get("parameters", [])]
                if params:
                    out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>about</th></tr>")
                    for p in params:
                        required = " (required)" if p.get("required") else ""
                        out.append(f"<tr><td><code>{escape(p['name'])}</code>{required}</td><td>{escape(p['in'])}</td>"
                                   f"<td>{_type(p.get('schema', {}))}</td>"
                                   f"<td>{_text(p.get('description', ''))}</td></tr>")
                    out.append("</table>")
                if op.get("requestBody"):
                    out.append(f"<p>body: {_content_schema(op['requestBody'])}</p>")
                answers = []
                for code, answer in op.get("responses", {}).items():
                    if "$ref" in answer:
                        answer = responses.get(answer["$ref"].rsplit("/", 1)[-1], {})
                    answers.append(f"<code>{escape(str(code))}</code> {escape(answer.get('description', ''))} "
                                   f"{_content_schema(answer)}")
                out.append("<p>answers: " + "; ".join(answers) + "</p>")
    out.append("<h2>Schemas</h2>")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        out.append(f"<h3 id=\"schema-{escape(name)}\">{escape(name)}</h3>")
        required = set(schema.get("required", []))
        props = schema.get("properties", {})
        if props:
            out.append("<table><tr><th>field</th><th>type</th><th>about</th></tr>")
            for field, prop in props.items():
                mark = " (required)" if field in required else ""
                nullable = " or null" if prop.get("nullable") else ""
                out.append(f"<tr><td><code>{escape(field)}</code>{mark}</td><td>{_type(prop)}{nullable}</td>"
                           f"<td>{_text(prop.get('description', ''))}</td></tr>")
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


@blp.route("/docs", methods=["GET"])
@public
@blp.response(200, content_type="text/html", description="This documentation as HTML")
def docs():
    """This API's documentation as a web page (no scripts, nothing fetched from elsewhere)."""
    api = current_app.extensions["socialcrm.api"]
    return Response(render(api.spec.to_dict()), content_type="text/html; charset=utf-8")
