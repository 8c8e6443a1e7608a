"""Every built-in plugin passes the same contract tests a third-party plugin runs (socialcrm.testing).

Adding a built-in: subclass ``SourceContract`` or ``SinkContract`` here (or in the plugin's own test
file) with ``plugin``, ``config`` and, for HTTP plugins, ``serve``; the last test below fails until
every built-in has one.
"""
import ast
import json
from importlib import metadata
from pathlib import Path

from socialcrm.plugins.sinks.console import ConsoleSink
from socialcrm.plugins.sinks.jsonl import JsonlSink
from socialcrm.plugins.sources.jsonl import JsonlSource
from socialcrm.testing import SinkContract, SourceContract


class TestJsonlSource(SourceContract):
    plugin = JsonlSource
    config = {"path": "mentions.jsonl", "page_size": 3}
    invalid_configs = [({"page_size": 0}, "page_size"), ({"path": ""}, "path")]

    def serve(self, upstream, api):
        # The whole file is rewritten before each run; posts only ever append, as a growing log does.
        with open(self.tmp_path / "mentions.jsonl", "w", encoding="utf-8") as handle:
            for item in upstream.items:
                handle.write(json.dumps(item.to_mention_json("x"), ensure_ascii=False) + "\n")


class TestJsonlSink(SinkContract):
    plugin = JsonlSink
    config = {"path": "out/records.jsonl", "fsync": False}
    invalid_configs = [({"path": ""}, "path"), ({"fsync": "sometimes"}, "fsync")]

    def stored_record_ids(self):
        path = self.tmp_path / "out" / "records.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


class TestConsoleSink(SinkContract):
    plugin = ConsoleSink
    config = {"reasons": True}
    invalid_configs = [({"reasons": "loud"}, "reasons")]


def _contract_plugins(folder: Path) -> set[str]:
    """Class names given as ``plugin = ...`` in contract test classes anywhere under ``folder``."""
    names = set()
    for path in folder.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    getattr(base, "id", getattr(base, "attr", None)) in ("SourceContract", "SinkContract")
                    for base in node.bases):
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == "plugin" for t in stmt.targets):
                        names.add(getattr(stmt.value, "id", getattr(stmt.value, "attr", None)))
    return names


def test_every_builtin_plugin_has_a_contract_test(plugins):
    builtin = {info.cls.__name__: info.name for info in plugins.listing() if info.distribution == "socialcrm"}
    covered = _contract_plugins(Path(__file__).parent)
    missing = {cls: name for cls, name in builtin.items() if cls not in covered}
    assert {"JsonlSource", "JsonlSink", "ConsoleSink"} <= covered
    assert not missing, (f"built-in plugins without a contract test (subclass SourceContract/SinkContract "
                         f"from socialcrm.testing): {missing}")


def test_the_kit_is_registered_as_a_pytest_plugin():
    entry_points = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
    assert entry_points.get("socialcrm") == "socialcrm.testing.pytest_plugin"
