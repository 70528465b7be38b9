"""Shared rich output: the console, messages, status tables, check summaries, the unlock panel.

Functions here only build renderables or print them; they take plain data (registry objects,
check reports, course rows) and never compute course state themselves.

Messages mark commands with backticks, as the course's plain functions and errors write them:

    say("module 03 is locked: next `tito module start 03`")

prints the command bold cyan, without the backticks, and never breaks it across lines: on a
terminal the message wraps between words, anywhere else (a log, a pipe) it stays one line.
"""

from __future__ import annotations

from rich._wrap import divide_line  # rich's own word wrapper (what Text.wrap calls)
from rich.cells import cell_len
from rich.console import Console, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Lines, Text

from tito.registry import Milestone, Module, Part

console = Console(highlight=False)

COMMAND = Style(bold=True, color="cyan")  # the style of a command; its text never wraps


def _glued(t: Text) -> str:
    """t's plain text with every space inside a command, and every no-break space (U+00A0, see
    `keep`), replaced by "_", a word character of the same width: the word wrapper sees each
    command as one word, at the same offsets."""
    chars = list(t.plain.replace("\xa0", "_"))
    for span in t.spans:
        if span.style == COMMAND:
            for i in range(span.start, min(span.end, len(chars))):
                if chars[i] == " ":
                    chars[i] = "_"
    return "".join(chars)


class CommandText:
    """A rich Text that wraps between words, but never inside a command (a span in the COMMAND
    style) nor at a no-break space: a command moves to the next line whole (only a command wider
    than the whole line is folded). A renderable of its own, not a Text subclass, because
    Console.print merges the Texts it is given into a plain Text before wrapping them."""

    def __init__(self, text: Text):
        self.text = text

    def wrap(self, console, width: int, justify="default", overflow="fold",
             no_wrap: bool = False) -> Lines:
        """Text.wrap, with the commands glued."""
        lines = Lines()
        for line in self.text.split(allow_blank=True):
            line.expand_tabs(console.tab_size)
            if no_wrap:
                new_lines = Lines([line])
            else:
                new_lines = line.divide(divide_line(_glued(line), width, fold=overflow == "fold"))
                for new in new_lines:
                    new.rstrip_end(width)
            new_lines.justify(console, width, justify=justify, overflow=overflow)
            for new in new_lines:
                if overflow != "ignore":
                    new.truncate(width, overflow=overflow)
                new.plain = new.plain.replace("\xa0", " ")  # the no-break space did its work
            lines.extend(new_lines)
        return lines

    def __rich_console__(self, console, options):
        no_wrap = self.text.no_wrap if self.text.no_wrap is not None else options.no_wrap
        lines = self.wrap(console, options.max_width,
                          justify=self.text.justify or options.justify or "default",
                          overflow=self.text.overflow or options.overflow or "fold",
                          no_wrap=bool(no_wrap))
        yield from Text("\n").join(lines).render(console, end=self.text.end)

    def __rich_measure__(self, console, options) -> Measurement:
        """Measured like a Text (a panel that fits its content fits it), each command one word.
        (Rich tables may still squeeze a column below that: give a command column no_wrap.)"""
        lines = self.text.plain.splitlines()
        widest = max((cell_len(x) for x in lines), default=0)
        words = _glued(self.text).split()
        return Measurement(max((cell_len(w) for w in words), default=widest), widest)


def text(message: str, style: str = "") -> CommandText:
    """A message in rich markup with `commands` in backticks -> CommandText, each command in the
    COMMAND style and unbreakable, the backticks gone. Interpolated values must be escaped, and
    a markup tag must close before the next command (`style` styles the whole message)."""
    out = Text(style=style)
    for i, piece in enumerate(message.split("`")):
        if i % 2:
            out.append(piece, style=COMMAND)
        else:
            out.append_text(Text.from_markup(piece))
    return CommandText(out)


def keep(words: str) -> str:
    """Words that stay on one line in a `text` message (e.g. '✓ 01 tensor'): no-break spaces."""
    return words.replace(" ", "\xa0")


def say(message: str, to: Console | None = None, style: str | None = None) -> None:
    """Print one message (see `text`): wrapped between words on a terminal, one line elsewhere."""
    to = to or console
    to.print(text(message, style or ""), soft_wrap=not to.is_terminal)


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
    lines.append(text(f"Run it on your own code:  `{cmd}`"))
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
