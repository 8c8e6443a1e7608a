"""Shared fixtures: plugin managers, config files, stores on SQLite and on the real PostgreSQL server."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import textwrap
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import responses
from sqlalchemy import select

from socialcrm.core.engine.config import load_config
from socialcrm.core.engine.plugins import default_manager
from socialcrm.core.store import Store, Transaction, testrows
from socialcrm.core.store.schema import mentions as mentions_table

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("SOCIALCRM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
SHARED_DATASETS = Path(os.environ.get("SOCIALCRM_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The labelled public data (``../shared/datasets`` or ``$SOCIALCRM_SHARED/datasets``): tests that need it
    skip where it is absent (a user's clone), and fail under CI=true, where it must be."""
    if not SHARED_DATASETS.is_dir():
        if IN_CI:
            pytest.fail(f"the shared datasets are missing at {SHARED_DATASETS} (CI=true)")
        pytest.skip(f"needs the shared datasets at {SHARED_DATASETS} (set SOCIALCRM_SHARED)")
    return SHARED_DATASETS


@pytest.fixture
def plugins():
    """Every installed plugin (the built-ins come in through their entry points)."""
    return default_manager()


BASE_CONFIG = """
[brand]
name = "Brightwave"
handles = ["@Brightwave", "@BrightwaveHelp"]
keywords = ["WaveBox"]
competitors = ["Orbit Fiber", "@OrbitFiber"]

[store]
url = "sqlite:///socialcrm.db"

[sources.file]
plugin = "jsonl"
path = "mentions.jsonl"
page_size = 50

[sinks.desk]
plugin = "jsonl"
path = "out/desk.jsonl"

[sinks.sales]
plugin = "jsonl"
path = "out/sales.jsonl"

[[routes]]
name = "support"
when = { type = ["case", "query", "rant"] }
sinks = ["desk"]
team = "care"

[[routes]]
name = "leads"
when = { type = ["lead"] }
sinks = ["sales"]
"""


@pytest.fixture
def write_config(tmp_path):
    """Write a config file into the test's folder; returns its path."""
    def write(text: str = BASE_CONFIG, name: str = "socialcrm.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path
    return write


@pytest.fixture
def base_config():
    """The text of the base config (a support route to ``desk``, leads to ``sales``)."""
    return textwrap.dedent(BASE_CONFIG)


@pytest.fixture
def config(write_config, plugins):
    """The base config, loaded."""
    return load_config(write_config(), plugins)


def mention_json(native_id: str, text: str, network: str = "x", **extra) -> dict:
    """A mention as the jsonl source reads it."""
    data = {"network": network, "id": native_id, "text": text, "created_at": "2026-10-01T10:00:00Z",
            "author": {"id": f"u{native_id}", "handle": f"user{native_id}", "followers": 100}}
    data.update(extra)
    return data


def write_mentions(path: Path, mentions: list[dict], mode: str = "w") -> None:
    """Write (or append) mentions as JSON Lines."""
    with path.open(mode, encoding="utf-8") as handle:
        for m in mentions:
            handle.write(json.dumps(m) + "\n")


def _pg_admin_engine():
    from sqlalchemy import create_engine, text
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return engine
    except Exception:
        engine.dispose()
        return None


@pytest.fixture(scope="session")
def pg_admin():
    """An autocommit engine on the PostgreSQL server; starts the server if it is down."""
    engine = _pg_admin_engine()
    if engine is None:
        subprocess.run(PG_START, shell=True, capture_output=True, timeout=60)
        engine = _pg_admin_engine()
    if engine is None:
        message = f"PostgreSQL does not answer at {PG_ADMIN_URL}; start it with: {PG_START}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin):
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import text
    name = f"socialcrm_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """The same tests on the embedded SQLite store and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url):
    store = Store(store_url)
    yield store
    store.close()


@pytest.fixture(name="mention_json")
def _mention_json_fixture():
    """The ``mention_json`` builder, for tests (importlib mode keeps conftest out of imports)."""
    return mention_json


@pytest.fixture(name="write_mentions")
def _write_mentions_fixture():
    """The ``write_mentions`` helper, for tests."""
    return write_mentions


@pytest.fixture
def ordered_responses():
    """A started ``responses`` mock for connector tests: every answer is registered in the order the
    plugin must ask for it, and each one must be asked for."""
    with responses.RequestsMock(assert_all_requests_are_fired=True,
                                registry=responses.registries.OrderedRegistry) as mock:
        yield mock


@pytest.fixture
def kill_while_storing(monkeypatch):
    """``kill_while_storing(pipeline, page)``: the process is killed (``KeyboardInterrupt``) while
    ``pipeline`` stores its ``page``-th page, so only the pages before it are stored."""
    def arm(pipeline, page: int) -> None:
        real_save, saves = Transaction.save_page, []

        def killed(tx, *args, **kwargs):
            saves.append(args[1])
            if len(saves) == page:
                raise KeyboardInterrupt("killed")
            return real_save(tx, *args, **kwargs)

        monkeypatch.setattr(Transaction, "save_page", killed)
    return arm


@pytest.fixture
def stored_ids():
    """``stored_ids(pipeline)``: the native ids of the mentions in the pipeline's store, sorted."""
    def ids(pipeline) -> list[str]:
        return sorted(testrows.scalars(pipeline.store, select(mentions_table.c.native_id)))
    return ids


class FakeCRM:
    """A CRM on 127.0.0.1 for fault-injection tests: it creates one object per ``Idempotency-Key``
    (a repeated key gets the original object back, nothing new), checks the webhook signature, and
    plays the faults queued in ``script`` (one per request, in order): ``500``/``503``, ``(429, secs)``
    (with ``Retry-After``), ``"timeout"`` (creates the object, then answers too late: a lost response)
    or ``"hang"`` (answers too late without creating anything). ``reject(record)`` returns a reason to
    refuse a record with 422. Requests to a path other than ``path`` get 404. ``hold_answer_at(n)`` makes
    the request that creates the ``n``-th object wait for ``release()`` before it answers, with ``held``
    set meanwhile: the object is stored, its answer not yet sent (the moment to kill a client)."""

    def __init__(self, secret="s3cret-key", path="/v1/records", delay=0.5):
        self.secret, self.path, self.delay = secret, path, delay
        self.script: list = []
        self.reject = lambda record: None
        self.objects: dict[str, dict] = {}
        self.created: Counter = Counter()  # objects created per record id (from the body)
        self.requests: list[tuple[float, str, int]] = []  # (monotonic time, key, status)
        self.replays = 0
        self.lock = threading.Lock()
        self.hold_at: int | None = None
        self.held = threading.Event()
        self.released = threading.Event()
        crm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: don't wait for delayed ACKs

            def log_message(self, *_args):  # keep the test output clean
                return None

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, payload, headers, late = crm._handle(self.path, self.headers, body)
                if crm._holds(status, payload):
                    crm.held.set()
                    crm.released.wait(60)
                if late:
                    time.sleep(crm.delay)  # the client has given up: this answer is lost
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in {**headers, "Content-Type": "application/json",
                                        "Content-Length": str(len(data))}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *_: None  # a client that timed out closed its socket: expected
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _handle(self, path, headers, body):
        key = headers.get("Idempotency-Key", "")
        with self.lock:
            action = self.script.pop(0) if self.script else None
            status, payload, extra, late = self._answer(path, headers, body, key, action)
            self.requests.append((time.monotonic(), key, status))
        return status, payload, extra, late

    def _answer(self, path, headers, body, key, action):
        if path != self.path:
            return 404, {"error": f"no such endpoint {path}"}, {}, False
        timestamp = headers.get("X-Socialcrm-Timestamp", "")
        expected = "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-Socialcrm-Signature", "")):
            return 401, {"error": "bad signature"}, {}, False
        if action in (500, 503):
            return action, {"error": "CRM unavailable"}, {}, False
        if isinstance(action, tuple) and action[0] == 429:
            return 429, {"error": "rate limited"}, {"Retry-After": str(action[1])}, False
        if action == "hang":
            return 503, {"error": "too late"}, {}, True
        if key in self.objects:
            self.replays += 1
            return 200, self.objects[key], {"Idempotent-Replayed": "true"}, action == "timeout"
        record = json.loads(body)
        reason = self.reject(record)
        if reason:
            return 422, {"error": reason}, {}, action == "timeout"
        self.objects[key] = {"id": f"crm-{len(self.objects) + 1}", "record_id": record["id"]}
        self.created[record["id"]] += 1
        return 201, self.objects[key], {}, action == "timeout"

    def hold_answer_at(self, n: int) -> None:
        """Hold the answer to the request that creates the ``n``-th object until ``release()``."""
        self.held.clear()
        self.released.clear()
        self.hold_at = n

    def release(self) -> None:
        """Let a held answer go (to a client that may have died meanwhile)."""
        self.hold_at = None
        self.released.set()

    def _holds(self, status, payload) -> bool:
        return status == 201 and self.hold_at is not None and payload.get("id") == f"crm-{self.hold_at}"

    @property
    def count(self) -> int:
        """Objects held."""
        with self.lock:
            return len(self.objects)

    def figures(self, sent_ids) -> dict:
        """Records sent, received (distinct), duplicates (objects beyond the first per record), lost."""
        with self.lock:
            received = set(self.created)
            return {"sent": len(set(sent_ids)), "received": len(received & set(sent_ids)),
                    "duplicates": sum(n - 1 for n in self.created.values()),
                    "lost": len(set(sent_ids) - received), "requests": len(self.requests),
                    "replayed_keys": self.replays}


@pytest.fixture
def fake_crm():
    """A running ``FakeCRM`` on 127.0.0.1 (port 0), stopped after the test."""
    crm = FakeCRM()
    crm.thread.start()
    yield crm
    crm.server.shutdown()
    crm.server.server_close()


# --- the REST API (tests/test_api_*.py) ---

API_TOKENS = {"read": "reader-token-0123456789abcdef", "write": "desk-token-0123456789abcdef",
              "admin": "ops-token-0123456789abcdef"}
API_HOOK_SECRET = "partner-secret-0123456789abcdef"
API_CONFIG = BASE_CONFIG + """
[api]
tokens = [
  { name = "reader", token = "${SOCIALCRM_TEST_READ}", scopes = ["read"] },
  { name = "desk", token = "${SOCIALCRM_TEST_WRITE}", scopes = ["read", "write"] },
  { name = "ops", token = "${SOCIALCRM_TEST_ADMIN}", scopes = ["admin"] },
]
max_body_bytes = 4096

[api.webhooks.partner]
secret = "${SOCIALCRM_TEST_HOOK}"

[privacy]
do_not_engage = ["x:@blocked_by_config"]
"""


class ApiHarness:
    """The API over a real store: a Flask test client, tokens per scope, a settable clock, and helpers to
    put mentions through the pipeline."""

    NOW = 1_790_000_000.0  # 2026-09-21T13:33:20Z

    def __init__(self, config, plugins, tmp_path):
        from socialcrm.api import create_app
        from socialcrm.core.engine.pipeline import Pipeline
        self.config, self.plugins, self.tmp_path = config, plugins, tmp_path
        self.now = self.NOW
        self.pipeline = Pipeline(config, plugins)
        self.store = self.pipeline.store
        self.app = create_app(config, plugins, self.pipeline, clock=lambda: self.now)
        self.client = self.app.test_client()
        self.tokens = dict(API_TOKENS)
        self.hook_secret = API_HOOK_SECRET

    def auth(self, scope: str = "admin") -> dict:
        """The Authorization header of the test token with ``scope``."""
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    def listen(self, mentions: list[dict]):
        """Append mentions to the jsonl source's file and listen (no delivery)."""
        write_mentions(self.tmp_path / "mentions.jsonl", mentions, mode="a")
        return self.pipeline.listen()

    def close(self):
        self.pipeline.close()


@pytest.fixture
def api_env(monkeypatch):
    """The environment the API config reads its tokens and webhook secret from."""
    monkeypatch.setenv("SOCIALCRM_TEST_READ", API_TOKENS["read"])
    monkeypatch.setenv("SOCIALCRM_TEST_WRITE", API_TOKENS["write"])
    monkeypatch.setenv("SOCIALCRM_TEST_ADMIN", API_TOKENS["admin"])
    monkeypatch.setenv("SOCIALCRM_TEST_HOOK", API_HOOK_SECRET)
    monkeypatch.delenv("SOCIALCRM_API_TOKENS", raising=False)
    return API_CONFIG


@pytest.fixture
def make_api(api_env, write_config, plugins, tmp_path):
    """Build an ``ApiHarness`` from a config text (the API config unless given); closed after the test."""
    made = []

    def make(text: str | None = None) -> ApiHarness:
        (tmp_path / "mentions.jsonl").touch()
        made.append(ApiHarness(load_config(write_config(text or api_env), plugins), plugins, tmp_path))
        return made[-1]
    yield make
    for harness in made:
        harness.close()


@pytest.fixture
def api(make_api):
    """An ``ApiHarness`` over the base config plus an ``[api]`` block (tokens read/write/admin, webhook
    ``partner``, a 4 KiB body limit, ``x:@blocked_by_config`` on the do-not-engage list)."""
    return make_api()
