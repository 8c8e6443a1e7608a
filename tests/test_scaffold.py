"""``socialcrm plugin new``: the packages it writes install with pip, pass their own tests, and run.

The proof from outside: both packages are pip-installed (offline, into a folder, never into the
shared virtualenv) and a separate ``socialcrm`` process finds them through their entry points,
reads mentions with the generated source from a real HTTP server on 127.0.0.1 and delivers the
records through the generated sink to the same server.
"""
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from socialcrm.core.services import scaffold
from socialcrm.core.cli.main import main

BIN = Path(sys.executable).parent
POSTS = [
    {"id": 11, "text": "@Brightwave my WaveBox is down again since this morning, doesn't work at all",
     "created_at": "2026-10-01T09:00:00Z", "author": {"id": "u1", "handle": "ana", "name": "Ana"}},
    {"id": 14, "text": "Anyone knows how to reset the WaveBox wifi password? @BrightwaveHelp",
     "created_at": "2026-10-01T09:05:00Z", "author": {"id": "u2", "handle": "bo", "name": "Bo"}},
    {"id": 20, "text": "Thinking of getting WaveBox fibre, what does the 500 Mb plan cost?",
     "created_at": "2026-10-01T09:09:00Z", "author": {"id": "u3", "handle": "cy", "name": "Cy"}},
]


class FakeVendor(BaseHTTPRequestHandler):
    """The generated plugins' API: GET /items for the source, POST /records for the sink."""

    received: list = []
    by_key: dict = {}

    def do_GET(self):  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path != "/items" or self.headers["Authorization"] != "Bearer vendor-token-42":
            return self._json(404 if url.path != "/items" else 401, {"error": "not here, or not you"})
        since, limit = int(query["since_id"]), int(query["limit"])
        newer = [p for p in POSTS if p["id"] > since]
        self._json(200, {"items": newer[:limit], "has_more": len(newer) > limit})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = self.headers["Idempotency-Key"]
        type(self).received.append({"body": body, "key": key, "auth": self.headers["Authorization"]})
        stored = type(self).by_key.setdefault(key, f"T-{len(type(self).by_key) + 1}")
        self._json(201, {"id": stored})

    def _json(self, status, data):
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def vendor():
    FakeVendor.received, FakeVendor.by_key = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVendor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", FakeVendor
    server.shutdown()
    server.server_close()


def _new(kind, name, parent):
    result = CliRunner().invoke(main, ["plugin", "new", kind, name, "--dir", str(parent)])
    assert result.exit_code == 0, result.output
    return parent / f"socialcrm-{name}"


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALCRM_") and k != "PYTHONPATH"}
    env.update(extra)
    return env


def test_generated_plugins_install_list_run_and_pass_their_own_tests(tmp_path, vendor):
    base_url, server = vendor
    source_pkg = _new("source", "acmeforum", tmp_path / "src")
    sink_pkg = _new("sink", "acmedesk", tmp_path / "src")
    site = tmp_path / "site"

    # The generated packages' own tests, in a pytest of their own, while the rest goes on.
    own_tests = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                  str(source_pkg / "tests"), str(sink_pkg / "tests")],
                                 cwd=tmp_path / "src", env=_env(PYTHONPATH=f"{source_pkg}{os.pathsep}{sink_pkg}"),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(site), str(source_pkg), str(sink_pkg)],
                         capture_output=True, text=True, timeout=300, env=_env())
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (site / "socialcrm_acmeforum.py").exists() and (site / "socialcrm_acmedesk.py").exists()
    env = _env(PYTHONPATH=str(site), ACME_TOKEN="vendor-token-42")

    listing = subprocess.run([str(BIN / "socialcrm"), "plugins", "--json"], capture_output=True, text=True,
                             timeout=120, env=env)
    assert listing.returncode == 0, listing.stderr
    found = {(p["kind"], p["name"]): p for p in map(json.loads, listing.stdout.splitlines())}
    assert found[("source", "acmeforum")]["plugin"] == "sources.acmeforum"
    assert found[("source", "acmeforum")]["distribution"].replace("_", "-") == "socialcrm-acmeforum"
    assert found[("sink", "acmedesk")]["version"] == "0.1.0"
    assert ("sink", "jsonl") in found  # the built-ins are still there

    config = tmp_path / "socialcrm.toml"
    config.write_text(textwrap.dedent(f"""
        [brand]
        name = "Brightwave"
        handles = ["@Brightwave", "@BrightwaveHelp"]
        keywords = ["WaveBox"]

        [store]
        url = "sqlite:///store.db"

        [sources.acmeforum]
        base_url = "{base_url}"
        api_token = "${{ACME_TOKEN}}"
        page_size = 2

        [sinks.acmedesk]
        base_url = "{base_url}"
        api_token = "${{ACME_TOKEN}}"

        [[routes]]
        name = "everything"
        sinks = ["acmedesk"]
    """), encoding="utf-8")
    run = subprocess.run([str(BIN / "socialcrm"), "run", "--once", "--config", str(config)], capture_output=True,
                         text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "listened: 3 mentions" in run.stdout and "delivered 3" in run.stdout, run.stdout

    delivered = {r["body"]["id"]: r for r in server.received}
    assert set(delivered) == {f"acmeforum:{p['id']}" for p in POSTS}
    assert all(r["key"] == r["body"]["id"] and r["auth"] == "Bearer vendor-token-42" for r in server.received)
    assert delivered["acmeforum:11"]["body"]["content"] == POSTS[0]["text"]

    again = subprocess.run([str(BIN / "socialcrm"), "run", "--once", "--config", str(config)], capture_output=True,
                           text=True, timeout=120, env=env)
    assert again.returncode == 0 and "listened: 0 mentions" in again.stdout, again.stdout + again.stderr
    assert len(server.received) == 3  # the cursor held: nothing read or sent twice

    output, _ = own_tests.communicate(timeout=180)
    assert own_tests.returncode == 0, output
    assert "failed" not in output and "error" not in output, output
    assert int(re.search(r"(\d+) passed", output).group(1)) >= 35, output  # both contracts ran, HTTP checks too


def test_generated_files_agree_on_the_name(tmp_path):
    for kind in scaffold.KINDS:
        files = scaffold.package_files(kind, "acme_forum")
        assert set(files) == {"pyproject.toml", "setup.cfg", "README.md", ".gitignore", "socialcrm_acme_forum.py",
                              "tests/test_socialcrm_acme_forum.py"}
        assert f"    {kind}s.acme_forum = socialcrm_acme_forum\n" in files["setup.cfg"]
        assert "name = socialcrm-acme_forum" in files["setup.cfg"]
        module = files["socialcrm_acme_forum.py"]
        assert 'name = "acme_forum"' in module and f"class AcmeForum{kind.capitalize()}(" in module
        assert f"[{kind}s.acme_forum]" in module and "${ACME_FORUM_TOKEN}" in module
        assert "__" + "NAME__" not in "".join(files.values())  # every placeholder filled
        for path, text in files.items():
            if path.endswith(".py"):
                compile(text, path, "exec")


def test_scaffold_refuses_bad_names_taken_names_and_full_folders(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(main, ["plugin", "new", "source", "Acme-Forum", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "lower-case letters" in bad.output
    taken = runner.invoke(main, ["plugin", "new", "sink", "jsonl", "--dir", str(tmp_path)])
    assert taken.exit_code == 2 and "already installed" in taken.output
    wrong_kind = runner.invoke(main, ["plugin", "new", "learner", "acme", "--dir", str(tmp_path)])
    assert wrong_kind.exit_code == 2
    assert runner.invoke(main, ["plugin", "new", "sink", "acme", "--dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(main, ["plugin", "new", "sink", "acme", "--dir", str(tmp_path)])
    assert again.exit_code == 1 and "not empty" in again.output
    assert list(tmp_path.iterdir()) == [tmp_path / "socialcrm-acme"]
