"""The layers depend one way, and plugins import only the public SDK: checked by import-linter.

The contracts live in setup.cfg (``[importlinter]``); these tests run them over the installed package, so a
layer importing upward, the API reaching the engine, or a plugin importing ``socialcrm.core`` fails the
build. The guide's example plugins are not part of the package, so their imports are read here directly.
"""
from __future__ import annotations

import ast
import configparser
from pathlib import Path

import pytest
from importlinter import configuration
from importlinter.application import use_cases

ROOT = Path(__file__).resolve().parents[1]
SETUP_CFG = str(ROOT / "setup.cfg")


def _contract_ids() -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SETUP_CFG)
    return [s.split(":", 2)[2] for s in parser.sections() if s.startswith("importlinter:contract:")]


def _lint(contract: str, extra_import: tuple[str, str] | None = None, monkeypatch=None) -> bool:
    """Run one contract of setup.cfg; ``extra_import`` adds an (importer, imported) edge to the graph first."""
    configuration.configure()
    if extra_import:
        build = use_cases._build_graph

        def with_extra_import(*args, **kwargs):
            graph = build(*args, **kwargs)
            graph.add_import(importer=extra_import[0], imported=extra_import[1], line_number=1,
                             line_contents=f"import {extra_import[1]}")
            return graph
        monkeypatch.setattr(use_cases, "_build_graph", with_extra_import)
    return use_cases.lint_imports(config_filename=SETUP_CFG, limit_to_contracts=(contract,), cache_dir=None,
                                  no_logo=True)


def test_the_contracts_cover_layers_plugins_and_the_api():
    assert {"layers", "plugins-use-the-sdk", "plugins-reach-no-engine", "api-calls-services",
            "sdk-knows-no-vendor"} <= set(_contract_ids())


@pytest.mark.parametrize("contract", _contract_ids())
def test_every_import_linter_contract_is_kept(contract):
    assert _lint(contract), f"import-linter contract {contract!r} of setup.cfg is broken (run lint-imports)"


@pytest.mark.parametrize("contract, importer, imported", [
    ("layers", "socialcrm.core.sdk.model", "socialcrm.core.engine.pipeline"),
    ("layers", "socialcrm.core.store", "socialcrm.core.services.feedback"),
    ("layers", "socialcrm.core.cli.main", "socialcrm.api"),
    ("plugins-use-the-sdk", "socialcrm.plugins.sinks.jsonl", "socialcrm.core.sdk.model"),
    ("plugins-reach-no-engine", "socialcrm.plugins.sources.rss", "socialcrm.core.store"),
    ("api-calls-services", "socialcrm.api.records", "socialcrm.core.engine.pipeline"),
    ("sdk-knows-no-vendor", "socialcrm.core.engine.pipeline", "socialcrm.plugins.sinks.jsonl"),
])
def test_each_contract_fails_on_the_import_it_forbids(contract, importer, imported, monkeypatch):
    assert not _lint(contract, (importer, imported), monkeypatch)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_guides_example_plugins_import_only_the_sdk():
    examples = sorted((ROOT / "docs" / "examples").rglob("*.py"))
    assert examples, "the plugin guide's examples are missing"
    for path in examples:
        internal = sorted(m for m in _imports(path) if m.startswith("socialcrm.") and m != "socialcrm.testing"
                          and not m.startswith("socialcrm.testing."))
        assert not internal, f"{path.relative_to(ROOT)} imports {internal}: plugins import only socialcrm"
