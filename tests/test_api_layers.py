"""The API reaches socialcrm through the services: the import contract holds, and the CLI commands that share
a service with the API (erase, dlq, status) go to the service, not through the API."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_calls_services_never_the_engine_or_the_store():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-logo", "--no-cache", "--contract", "api-calls-services"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The API calls services and the SDK, never the engine or the store KEPT" in done.stdout


@pytest.mark.parametrize("command", ["erase", "dlq", "status"])
def test_cli_commands_sharing_a_service_with_the_api_do_not_import_it(command):
    graph = grimp.build_graph("socialcrm")
    module = f"socialcrm.core.cli.commands.{command}"
    imported = graph.find_modules_directly_imported_by(module)
    assert not {m for m in imported if m == "socialcrm.api" or m.startswith("socialcrm.api.")}
    assert any(m.startswith("socialcrm.core.services.") for m in imported)
