"""docs/writing-plugins.md and the code stay in step: every hook documented as specified, no hook invented,
code excerpts copied from the runnable examples, and the guide's own snippets run."""
import inspect
import re
import types
from pathlib import Path

import pytest

from socialcrm.core.sdk import hookspecs
from socialcrm.core.engine.plugins import PluginManager
from socialcrm.testing import BRAND, make_record

ROOT = Path(__file__).resolve().parent.parent
GUIDE_PATH = ROOT / "docs" / "writing-plugins.md"
GUIDE = GUIDE_PATH.read_text(encoding="utf-8")
HOOK_HEADING = re.compile(r"^### `(\w+)\(([^)]*)\)`\s*$", re.MULTILINE)
CODE_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXCERPT = re.compile(r"^# from (\S+)\n")


def _hookspecs() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(func) for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(func, f"{hookspecs.PROJECT}_spec")}


def _sections() -> dict[str, tuple[str, str]]:
    """Each documented hook: its heading's arguments and the text up to the next heading."""
    found = {}
    headings = list(HOOK_HEADING.finditer(GUIDE))
    for match in headings:
        rest = GUIDE[match.end():]
        end = re.search(r"^#{2,3} ", rest, re.MULTILINE)
        found[match.group(1)] = (match.group(2), rest[:end.start()] if end else rest)
    return found


def _first_sentence(docstring: str) -> str:
    text = " ".join(inspect.cleandoc(docstring).split()).replace("``", "`")
    return text.split(". ")[0].rstrip(".")


def _blocks(language: str) -> list[str]:
    return [body for lang, body in CODE_BLOCK.findall(GUIDE) if lang == language]


def test_every_hookspec_is_documented_with_its_signature():
    specs, documented = _hookspecs(), _sections()
    assert specs, "no hookspecs found"
    for name, signature in specs.items():
        assert name in documented, f"hook {name} has no '### `{name}(...)`' section in {GUIDE_PATH.name}"
        assert documented[name][0] == ", ".join(signature.parameters), (
            f"{name}: the guide says ({documented[name][0]}), the spec takes ({', '.join(signature.parameters)})")


def test_the_guide_documents_no_hook_that_does_not_exist():
    specs = _hookspecs()
    invented = [name for name in _sections() if name not in specs]
    assert not invented, f"the guide documents hooks that core/sdk/hookspecs.py does not have: {invented}"
    implemented = {m.group(1) for block in _blocks("python")
                   for m in re.finditer(r"@hookimpl\s*\ndef (\w+)\(", block)}
    assert implemented and implemented <= set(specs), f"examples implement unknown hooks: {implemented - set(specs)}"


def test_guide_and_hookspec_docstrings_agree():
    for name, func in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(func, f"{hookspecs.PROJECT}_spec"):
            continue
        section = " ".join(_sections()[name][1].split())
        assert func.__doc__, f"hookspec {name} has no docstring"
        sentence = _first_sentence(func.__doc__)
        assert sentence in section, f"{name}: the guide's section does not say the spec's {sentence!r}"
        assert "**When:** called" in section, f"{name}: say when the hook is called"
        for argument in inspect.signature(func).parameters:
            assert f"`{argument}`" in section, f"{name}: the guide's section does not describe `{argument}`"


def test_code_excerpts_are_copied_from_the_runnable_examples():
    excerpts = 0
    for language in ("python", "ini"):
        for block in _blocks(language):
            match = EXCERPT.match(block)
            if not match:
                continue
            excerpts += 1
            source = (ROOT / match.group(1)).read_text(encoding="utf-8")
            body = block[match.end():]
            assert body in source, f"the excerpt from {match.group(1)} no longer matches the file:\n{body}"
    assert excerpts >= 10


def test_every_example_and_path_the_guide_names_exists():
    for path in set(re.findall(r"\b(docs/examples/[\w./-]+|core/[\w/]+\.py|tests/[\w/]+\.py)", GUIDE)):
        if "NAME" in path:
            continue  # a scaffold placeholder, not a file of this repository
        assert (ROOT / path.rstrip("/.")).exists(), f"the guide names {path}, which does not exist"


def test_the_guides_own_snippets_run():
    standalone = [block for block in _blocks("python") if not EXCERPT.match(block)]
    assert len(standalone) == 2  # the public imports and the learn_records example
    namespace: dict = {}
    for block in standalone:
        exec(compile(block, str(GUIDE_PATH), "exec"), namespace)  # noqa: S102 - our own documentation
    module = types.ModuleType("guide_vip_plugin")
    module.learn_records = namespace["learn_records"]
    pm = PluginManager()
    pm.register(module, name="guide_vip_plugin")
    vip, other = make_record(1), make_record(2)
    vip.author.handle = "ana_runs_ops"
    pm.learn_records([vip, other], [], BRAND)
    assert (vip.author.contact_id, vip.priority) == ("CRM-0042", "P1") and "VIP contact" in vip.reasons[-1]
    assert other.author.contact_id is None


@pytest.mark.parametrize("topic", ["max_batch", "Idempotency-Key", "context.http(", "Delivery.retry",
                                   "Delivery.rejected", "AuthError", "RetriableError", "one transaction",
                                   "responses", "SourceContract", "SinkContract", "socialcrm plugin new"])
def test_the_guide_covers(topic):
    assert topic in " ".join(GUIDE.split())

