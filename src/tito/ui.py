"""Shared rich output: the console, status tables, check summaries and the unlock panel.

Functions here only build renderables or print them; they take plain data (registry objects,
check reports, course rows) and never compute course state themselves.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tito.registry import Milestone, Module, Part

console = Console(highlight=False)

MAX_ROWS = 15  # failing checks listed one by one; the rest are counted

STATUS_STYLE = {
    "complete": "[green]✓ complete[/]",
    "in progress": "[yellow]… in progress[/]",
    "available": "[cyan]○ available[/]",
    "locked": "[dim]🔒 locked[/]",
    "coming": "[dim]· coming[/]",
}


def status_label(status: str) -> str:
    return STATUS_STYLE.get(status, status)


def module_table(rows, title: str = "Modules") -> Table:
    """One line per module: id, name, tier, status, note (rows from tito.course.module_rows)."""
    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("id", "module", "tier", "status", "note"):
        table.add_column(col, no_wrap=col != "note")
    for r in rows:
        dim = r.status == "coming"
        name = f"[dim]{r.module.title}[/]" if dim else r.module.title
        table.add_row(r.module.id, name, r.module.tier, status_label(r.status), escape(r.note))
    return table


def unlock_panel(milestone: Milestone, parts: list[Part]) -> Panel:
    """Shown by `tito module complete` for each milestone whose parts just became runnable.

    If the milestone's first part is among them, the milestone itself is announced; otherwise
    (a later part, e.g. milestone 02 part 2 after module 07) the part is.
    """
    if parts[0].number == milestone.parts[0].number:
        head = f"[bold]Milestone {milestone.id}: {milestone.title} ({milestone.year})[/] is unlocked!"
        cmd = f"tito milestone run {milestone.id}"
    else:
        names = ", ".join(f"part {p.number}: {p.name}" for p in parts)
        head = f"[bold]Milestone {milestone.id}, {names}[/] is unlocked! ({milestone.title}, {milestone.year})"
        cmd = f"tito milestone run {milestone.id} --part {parts[0].number}"
    lines = [Text.from_markup(head), Text(f"{milestone.people} - {milestone.what}", style="dim")]
    if len(milestone.parts) > 1 and parts[0].number == milestone.parts[0].number:
        ready = ", ".join(f"{p.number}. {p.name}" for p in parts)
        lines.append(Text(f"Parts ready: {ready}"))
    lines.append(Text.from_markup(f"Run it on your own code:  [bold cyan]{cmd}[/]"))
    return Panel(Group(*lines), title="🏆 milestone unlocked", border_style="green", expand=False)


def check_summary(report, verbose: bool = False):
    """A rich summary of a CheckReport: counts, each failing check and the function at fault."""
    parts = []
    n_pass, fails = len(report.passed), report.failures()
    skipped = [r for r in report.results if r.outcome == "skipped"]
    line = f"[bold]{report.module}[/]: [green]{n_pass} passed[/]"
    if fails:
        line += f", [red]{len(fails)} failed[/]"
    if skipped:
        line += f", [dim]{len(skipped)} skipped[/]"
    parts.append(Text.from_markup(line + f"  [dim]({report.seconds:.1f} s)[/]"))
    problem = report.problem()
    if problem:
        parts.append(Text.from_markup(f"[bold red]{problem}[/]"))
        for err in report.collect_errors[:1]:
            parts.append(Text(_tail(err, 15), style="red"))
        if not report.results and not report.collect_errors:
            parts.append(Text(_tail(report.output, 15), style="dim"))
    if fails:
        table = Table(show_header=True, header_style="bold", expand=False)
        for col in ("check", "function at fault", "what happened"):
            table.add_column(col, overflow="fold")
        for r in fails[:MAX_ROWS]:
            what = "not implemented yet" if r.kind == "stub" else r.short
            where = f" [dim]({escape(r.where)})[/]" if r.where and r.kind != "stub" else ""
            table.add_row(escape(r.name), escape(r.function or "?") + where, escape(what))
        if len(fails) > MAX_ROWS:
            table.add_row(f"[dim]... and {len(fails) - MAX_ROWS} more[/]", "", "")
        parts.append(table)
        counts: dict[str, int] = {}
        for r in fails:
            counts[r.function or "?"] = counts.get(r.function or "?", 0) + 1
        parts.append(Text.from_markup("[bold]At fault:[/] " + ", ".join(
            f"{escape(name)} [dim]({n} check{'s' if n > 1 else ''})[/]" for name, n in counts.items())))
        if verbose:
            for r in fails[:MAX_ROWS]:
                parts.append(Panel(Text(_tail(r.longrepr, 40)), title=escape(r.name), border_style="red"))
    return Group(*parts)


def _tail(text: str, n: int) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-n:])


def module_heading(m: Module) -> str:
    return f"[bold]Module {m.id}: {m.title}[/] [dim]({m.tier})[/]"
