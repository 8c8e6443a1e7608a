"""Write a new plugin package: ``socialcrm plugin new source|sink NAME``.

The package is small and complete: ``setup.cfg`` with the ``socialcrm`` entry point, a
``pyproject.toml``, the plugin module (a working connector for a simple JSON API, to adapt to the
real one), contract tests from ``socialcrm.testing`` against a fake of that API, and a README.
It installs with pip and passes its own tests as written.
"""
from __future__ import annotations

import re
from pathlib import Path

KINDS = ("source", "sink")
NAME_RULE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_PYPROJECT = '''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[tool.pytest.ini_options]
# The tests run from a checkout without installing: the module sits beside this file.
pythonpath = ["."]
testpaths = ["tests"]
addopts = "-p no:cacheprovider"
'''

_SETUP_CFG = '''[metadata]
name = __DIST__
version = 0.1.0
description = socialcrm __KIND__: __SUMMARY__
long_description = file: README.md
long_description_content_type = text/markdown

[options]
python_requires = >=3.11
py_modules = __MODULE__
install_requires =
    socialcrm

[options.extras_require]
test =
    socialcrm[test]

# socialcrm finds plugins through this entry-point group; `socialcrm plugins` lists what it found.
[options.entry_points]
socialcrm =
    __KIND__s.__NAME__ = __MODULE__
'''

_README = '''# __DIST__

A socialcrm __KIND__: __SUMMARY__.

```toml
__TOML__
```

## Develop

```sh
pip install -e '.[test]'   # beside socialcrm
pytest                     # the contract tests from socialcrm.testing
socialcrm plugins          # lists `__NAME__`
```

The module talks to a simple JSON API described in its docstring. Change the request, the fields it
reads and the cursor (or the payload) to what your vendor documents, and change the fake in
`tests/` to answer exactly as the vendor's documentation shows. The contract tests check what
socialcrm relies on: see socialcrm's `docs/writing-plugins.md`.
'''

_SOURCE_TOML = '''[sources.__NAME__]
base_url = "https://api.__HOST__.example"
api_token = "${__ENV___TOKEN}"'''

_SINK_TOML = '''[sinks.__NAME__]
base_url = "https://api.__HOST__.example"
api_token = "${__ENV___TOKEN}"

# A post addressed to the brand that no [[routes]] rule matched still reaches someone.
[routing]
unmatched = { sinks = ["__NAME__"], team = "social-care" }'''

# What sources and sinks written here share: the settings of a JSON API behind a bearer token, the
# client that calls it, and the entry-point hook that adds the plugin to socialcrm.
_API_SETTINGS = '''    base_url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    api_token = fields.String(required=True, validate=validate.Length(min=1))'''

_API_CLIENT = '''    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        self.base_url = config["base_url"].rstrip("/")
        self.headers = {"Authorization": f"Bearer {config['api_token']}", "Accept": "application/json"}
        # The shared HTTP layer: timeouts, retries, exact rate-limit waits, secrets kept out of logs.
        self.http = context.http()'''

_REGISTER = '''@hookimpl
def register_{kind}s(register):
    """Add the __NAME__ {kind} to socialcrm."""
    register(__CLASS__{Kind})'''

_SOURCE = '''"""__NAME__ source: mentions from __NAME__'s JSON API, resumable by the last item id read.

Written by `socialcrm plugin new source __NAME__`. It reads a simple API, oldest item first:

    GET {base_url}/items?since_id=<the last id read>&limit=<page_size>
    Authorization: Bearer <api_token>
    -> {"items": [{"id": 12, "text": "...", "created_at": "2026-10-01T09:00:00Z",
                   "author": {"id": "u1", "handle": "ana", "name": "Ana"}, "url": "https://..."}],
        "has_more": true}

Change the request, the fields `_mention` reads and the cursor to what your network documents.

__TOML_INDENTED__
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from marshmallow import fields, validate

from socialcrm import Author, Mention, Page, Source, StrictSchema, hookimpl


class __CLASS__Config(StrictSchema):  # StrictSchema: a typo in the config file is an error
    """``base_url`` of the API, ``api_token`` to call it with, ``page_size`` items per request."""

__API_SETTINGS__
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class __CLASS__Source(Source):
    """Mentions from __NAME__'s JSON API, resumable by the last item id read."""

    name = "__NAME__"
    ConfigSchema = __CLASS__Config
    secret_fields = ("api_token",)

__API_CLIENT__

    def check(self) -> str:
        self._items(since_id=0, limit=1)
        return f"{self.base_url}: credentials accepted"

    def fetch(self, cursor: Any) -> Iterator[Page]:
        since_id = (cursor or {}).get("since_id", 0)
        while True:
            body = self._items(since_id, self.config["page_size"])
            if not body["items"]:
                return
            since_id = max(int(item["id"]) for item in body["items"])
            # The host stores this page's mentions and its cursor in one transaction.
            yield Page([self._mention(item) for item in body["items"]], {"since_id": since_id})
            if not body.get("has_more"):
                return

    def _items(self, since_id: int, limit: int) -> dict[str, Any]:
        return self.http.get(f"{self.base_url}/items", params={"since_id": since_id, "limit": limit},
                             headers=self.headers).json()

    def _mention(self, item: dict[str, Any]) -> Mention:
        author = item.get("author") or {}
        created = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")).astimezone(timezone.utc)
        return Mention(network="__NAME__", native_id=str(item["id"]), text=item["text"], created_at=created,
                       author=Author(id=author.get("id"), handle=author.get("handle"), name=author.get("name")),
                       url=item.get("url"), raw=item)


__REGISTER__
'''

_SOURCE_TEST = '''"""Contract tests for the __NAME__ source (socialcrm.testing), against a fake of its API."""
import json

from socialcrm.testing import SourceContract
from __MODULE__ import __CLASS__Source

BASE_URL = "https://api.__HOST__.example"


def api_item(item):
    """One item as the API returns it: make this exactly what your vendor documents."""
    return {"id": item.id, "text": item.text, "created_at": item.created_iso,
            "author": {"id": item.author_id, "handle": item.author_handle, "name": item.author_name},
            "url": f"https://__HOST__.example/items/{item.id}"}


class Test__CLASS__Source(SourceContract):
    plugin = __CLASS__Source
    config = {"base_url": BASE_URL, "api_token": "test-token-1234", "page_size": 3}
    invalid_configs = [({"page_size": 0}, "page_size"), ({"base_url": "not a url"}, "base_url")]

    def serve(self, upstream, api):
        def items(request):
            since_id, limit = int(request.params["since_id"]), int(request.params["limit"])
            body = {"items": [api_item(i) for i in upstream.after(since_id, limit)],
                    "has_more": len(upstream.after(since_id)) > limit}
            return 200, {"Content-Type": "application/json"}, json.dumps(body)
        api.add_callback("GET", f"{BASE_URL}/items", callback=upstream.guard(items))
'''

_SINK = '''"""__NAME__ sink: delivers records to __NAME__'s REST API, one idempotent POST per record.

Written by `socialcrm plugin new sink __NAME__`. It posts each record as JSON:

    POST {base_url}/records
    Authorization: Bearer <api_token>
    Idempotency-Key: <record id>
    -> 201 {"id": "<the id __NAME__ gave it>"}   (a re-sent key answers the first object)
    -> 4xx {"error": "..."}                       (this record is refused as it is)

Change the URL, the payload and the reading of the answer to what your vendor documents.

__TOML_INDENTED__
"""
from __future__ import annotations

from typing import Any, Sequence

from marshmallow import fields, validate

from socialcrm import Delivery, Record, RetriableError, Sink, StrictSchema, hookimpl


class __CLASS__Config(StrictSchema):  # StrictSchema: a typo in the config file is an error
    """``base_url`` of the API and the ``api_token`` to call it with."""

__API_SETTINGS__


class __CLASS__Sink(Sink):
    """Delivers records to __NAME__'s REST API, idempotent on the record id."""

    name = "__NAME__"
    ConfigSchema = __CLASS__Config
    secret_fields = ("api_token",)
    max_batch = 50

__API_CLIENT__

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        out: list[Delivery] = []
        for index, record in enumerate(records):
            try:
                # The record id is the idempotency key: a re-send after a crash finds the same object.
                response = self.http.post(f"{self.base_url}/records", json=self.payload(record),
                                          headers={**self.headers, "Idempotency-Key": record.id}, classify=False)
            except RetriableError as exc:
                # Rate limited or failing for longer than the HTTP layer waits in line: this record
                # and the rest come back later, no sooner than the server asked.
                out.extend(Delivery.retry(r.id, str(exc), exc.retry_after) for r in records[index:])
                break
            if response.status_code >= 400:
                # 401/403 raised AuthError already; any other 4xx refuses this record as it is.
                out.append(Delivery.rejected(record.id, f"{response.status_code}: {response.text[:300]}"))
            else:
                out.append(Delivery.delivered(record.id, str(response.json()["id"])))
        return out

    def payload(self, record: Record) -> dict[str, Any]:
        """What the API receives for a record."""
        return record.to_dict()


__REGISTER__
'''

_SINK_TEST = '''"""Contract tests for the __NAME__ sink (socialcrm.testing), against a fake of its API."""
import json

from socialcrm.testing import SinkContract
from __MODULE__ import __CLASS__Sink

BASE_URL = "https://api.__HOST__.example"


class Test__CLASS__Sink(SinkContract):
    plugin = __CLASS__Sink
    config = {"base_url": BASE_URL, "api_token": "test-token-1234"}
    invalid_configs = [({"base_url": "not a url"}, "base_url"), ({"api_token": ""}, "api_token")]

    def serve(self, system, api):
        def create(request):
            record = json.loads(request.body)
            if system.refuses(record["id"]):
                return 422, {"Content-Type": "application/json"}, json.dumps({"error": "content: too long"})
            stored, _ = system.create(record["id"], record, idempotency_key=request.headers["Idempotency-Key"])
            return 201, {"Content-Type": "application/json"}, json.dumps({"id": stored.id})
        api.add_callback("POST", f"{BASE_URL}/records", callback=system.guard(create))
'''

_GITIGNORE = "__pycache__/\n*.egg-info/\nbuild/\ndist/\n"


def validate_name(name: str) -> None:
    """Refuse a name that cannot be a plugin name, module suffix and config block at once."""
    if not NAME_RULE.match(name):
        raise ValueError(f"plugin name {name!r}: use lower-case letters, digits and '_', starting with a letter "
                         "(it becomes the config block [sources.NAME], the module socialcrm_NAME and the entry point)")


def class_prefix(name: str) -> str:
    """``acme_forum`` -> ``AcmeForum``."""
    return "".join(part.capitalize() for part in name.split("_") if part)


def package_files(kind: str, name: str) -> dict[str, str]:
    """The files of a new ``kind`` plugin called ``name``: relative path -> text."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: choose one of {', '.join(KINDS)}")
    validate_name(name)
    module = f"socialcrm_{name}"
    toml = (_SOURCE_TOML if kind == "source" else _SINK_TOML)
    summary = (f"mentions from {name}'s JSON API" if kind == "source"
               else f"delivers records to {name}'s REST API")
    files = {
        "pyproject.toml": _PYPROJECT,
        "setup.cfg": _SETUP_CFG,
        "README.md": _README,
        ".gitignore": _GITIGNORE,
        f"{module}.py": _SOURCE if kind == "source" else _SINK,
        f"tests/test_{module}.py": _SOURCE_TEST if kind == "source" else _SINK_TEST,
    }
    tokens = {
        "__API_SETTINGS__": _API_SETTINGS,
        "__API_CLIENT__": _API_CLIENT,
        "__REGISTER__": _REGISTER.format(kind=kind, Kind=kind.capitalize()),
        "__TOML_INDENTED__": "\n".join("    " + line for line in toml.splitlines()),
        "__TOML__": toml,
        "__SUMMARY__": summary,
        "__DIST__": f"socialcrm-{name}",
        "__MODULE__": module,
        "__CLASS__": class_prefix(name),
        "__KIND__": kind,
        "__ENV__": name.upper(),
        "__HOST__": name.replace("_", "-"),  # a host name takes no '_'
        "__NAME__": name,
    }
    out = {}
    for path, text in files.items():
        for token, value in tokens.items():  # ordered: the composite tokens first
            text = text.replace(token, value)
        out[path] = text
    return out


def write_package(kind: str, name: str, parent: str | Path) -> Path:
    """Write the package into ``parent/socialcrm-NAME`` and return that folder.

    Refuses to touch a folder that already has files in it.
    """
    files = package_files(kind, name)
    target = Path(parent) / f"socialcrm-{name}"
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} already exists and is not empty; choose another --dir or name")
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
