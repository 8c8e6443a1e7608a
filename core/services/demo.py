"""``socialcrm demo``: the whole workflow, offline, on the bundled sample mentions of a fictional brand."""
from __future__ import annotations

import os
import shlex
import shutil
import sys
from importlib import resources
from pathlib import Path

from rich.columns import Columns
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from socialcrm.core.engine.config import load_config
from socialcrm.core.engine.plugins import PluginManager


def samples_dir() -> Path:
    """Where the bundled sample mentions and the demo config are installed."""
    return Path(str(resources.files("socialcrm") / "samples"))


def write_demo_config(out_dir: Path) -> Path:
    """Write the demo config into ``out_dir`` with the sample and output paths filled in."""
    template = (samples_dir() / "demo.toml").read_text(encoding="utf-8")
    text = template.replace("{samples}", samples_dir().as_posix()).replace("{out}", out_dir.resolve().as_posix())
    path = out_dir / "socialcrm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_demo(plugins: PluginManager, out_dir: Path, console: Console | None = None) -> dict:
    """Start from an empty ``out_dir``, run listen -> capture -> learn -> engage once, print a summary.
    The demo's store brings its own schema up to date (no `socialcrm db upgrade` first)."""
    from socialcrm.core.engine.pipeline import Pipeline
    from socialcrm.core.engine.stores import open_store

    console = console or Console()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    config = load_config(write_demo_config(out_dir), plugins)
    total = sum(1 for line in (samples_dir() / "mentions.jsonl").open(encoding="utf-8") if line.strip())
    pipeline = Pipeline(config, plugins, store=open_store(config, upgrade=True))
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            task = progress.add_task("listen, capture, learn", total=total)
            listened = pipeline.listen(on_page=lambda _name, page: progress.advance(
                task, len(page.mentions) + len(page.errors)))
            deliver = progress.add_task("engage: deliver", total=listened.queued)
            delivered = pipeline.deliver()
            progress.update(deliver, completed=delivered.total())
        summary = pipeline.store.summary()
        _print_summary(console, summary, listened, delivered, out_dir)
        return summary
    finally:
        pipeline.close()


def _count_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column(title.split()[-1])
    table.add_column("records", justify="right")
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(key, str(value))
    return table


def _print_summary(console: Console, summary: dict, listened, delivered, out_dir: Path) -> None:
    console.print()
    console.print(f"[bold]{listened.fetched}[/] mentions heard, [bold]{listened.records}[/] records learned "
                  f"({listened.duplicates} duplicates dropped, {listened.reposts} reposts counted toward reach, "
                  f"{listened.own_posts} of the brand's own posts skipped, {listened.unreadable} unreadable).")
    console.print(Columns([_count_table("by type", summary["type"]),
                           _count_table("by sentiment", summary["sentiment"]),
                           _count_table("by priority", summary["priority"]),
                           _count_table("by route", summary["route"])], padding=(0, 4)))
    sinks = Table(title="delivered to", title_justify="left", show_edge=False)
    sinks.add_column("sink")
    sinks.add_column("records", justify="right")
    for name, count in sorted(delivered.delivered.items()):
        sinks.add_row(name, str(count))
    console.print(sinks)
    command, activate = command_as_typed()
    config = shlex.quote((out_dir / "socialcrm.toml").as_posix())
    console.print(f"\nRecords, with the reasons for each decision, are in [bold]{out_dir}/*.jsonl[/]; "
                  f"browse them with:")
    # Never wrapped: the line is a command to copy as it is.
    console.print(f"  {command} records --config {config} --type case", highlight=False, markup=False,
                  soft_wrap=True)
    if activate:
        console.print(f"(or activate the environment first, {activate}, and type plain socialcrm)",
                      highlight=False, markup=False, soft_wrap=True)


def command_as_typed() -> tuple[str, str | None]:
    """How the user's shell reaches this socialcrm, and the command that activates its environment (None
    when nothing needs activating): ``socialcrm`` when it is the one on PATH, else the path of this
    environment's script, relative to the working directory when it is under it."""
    bin_dir = Path(sys.prefix) / ("Scripts" if os.name == "nt" else "bin")
    script = bin_dir / "socialcrm"
    on_path = shutil.which("socialcrm")
    if not script.exists() or (on_path and Path(on_path).resolve() == script.resolve()):
        return "socialcrm", None
    activate = bin_dir / "activate"
    return _as_typed(script), f"source {_as_typed(activate)}" if activate.exists() else None


def _as_typed(path: Path) -> str:
    """``path`` as a shell word: relative to the working directory when it is under it."""
    relative = os.path.relpath(path)
    return shlex.quote(str(path) if relative.startswith("..") else relative)
