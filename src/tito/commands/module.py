"""`tito module ...` plus the top-level `tito init` and `tito status`. Parses and prints only;
the work is done by plain functions in tito.course, tito.workspace and tito.state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel
from rich.table import Table

from tito import activation, course, registry, state, ui
from tito import milestone_run as mr
from tito.notebooks import notebook_path
from tito.ui import escape
from tito.workspace import find_workspace, init_workspace, list_backups, reset as reset_file, restore

app = typer.Typer(help="Build TinyTorch one module at a time: start, test, complete, reset.",
                  no_args_is_help=True)
out = ui.console

WorkspaceOpt = Annotated[Optional[Path], typer.Option(
    "--workspace", "-w", help="The workspace folder (default: $TITO_WORKSPACE, or the current "
                              "folder and its parents).")]
ModuleArg = Annotated[str, typer.Argument(help="Module id: 3, 03, 03_layers or layers.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Go ahead even if prerequisites are missing.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show each failure's traceback.")]


@app.command("list")
def list_() -> None:
    """All 20 modules in course order: tier, prerequisites, what each teaches."""
    table = Table(title="TinyTorch modules", title_justify="left")
    for col in ("id", "module", "tier", "needs", "teaches"):
        table.add_column(col, no_wrap=col != "teaches", ratio=1 if col == "teaches" else None)
    for m in registry.MODULES:
        teaches = m.teaches if m.built else f"[dim](coming) {m.teaches}[/]"
        table.add_row(m.id, m.name, m.tier, " ".join(m.prereqs) or "-", teaches)
    out.print(table)


@app.command("status")
def module_status(workspace: WorkspaceOpt = None) -> None:
    """A table of the 20 modules (locked / available / in progress / complete) and the next step."""
    ws = find_workspace(workspace)
    rows = course.module_rows(ws)
    out.print(ui.module_table(rows, title=f"Modules in {ws.root}"))
    ui.say(f"[bold]Next:[/] {escape(course.next_step(ws, rows))}", out)


@app.command()
def start(module: ModuleArg, force: ForceOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Show the lesson summary and the file to edit (refuses while prerequisites are missing)."""
    ws, m = find_workspace(workspace), registry.get_module(module)
    info = course.start(ws, m, force=force)
    if info.missing:
        out.print(f"[yellow]Warning:[/] prerequisites not complete: "
                  f"{', '.join(str(x) for x in info.missing)} (started anyway: --force)")
    out.print(Panel(escape(info.lesson_summary or m.teaches), title=ui.module_heading(m), expand=False))
    out.print("[bold]You write:[/] " + ", ".join(info.functions))
    out.print(f"[bold]Open:[/]   {escape(course.rel(ws, notebook_path(info.path)))}  [dim](the "
              f"lesson, as a notebook; or edit {escape(info.path.name)} - tito reads the one you "
              "edited last)[/]" + ("  [dim](created)[/]" if info.created else ""), soft_wrap=True)
    ui.say(f"[bold]Then:[/]   `tito module test {m.id}`   ->   `tito module complete {m.id}`", out)


@app.command()
def test(module: ModuleArg,
         keyword: Annotated[Optional[str], typer.Option("-k", help="Only checks matching this "
                                                        "pytest -k expression.")] = None,
         task: Annotated[Optional[str], typer.Option("--task", help="Only the checks of one task "
                                                     "(e.g. a function name).")] = None,
         force: ForceOpt = False, verbose: VerboseOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Run the module's checks on YOUR working file (nothing is exported or recorded)."""
    ws, m = find_workspace(workspace), registry.get_module(module)
    report = course.test(ws, m, keyword=keyword, task=task, force=force)
    _print_notes(report.notes)
    out.print(ui.check_summary(report, verbose=verbose))
    if not report.ok:
        ui.say(f"Fix the function(s) above in {escape(course.rel(ws, ws.working_file(m)))} and run "
               f"`tito module test {m.id}` again.", out)
        raise typer.Exit(1)
    ui.say(f"[green]All checks pass.[/] Export it with `tito module complete {m.id}`.", out)


@app.command()
def complete(module: ModuleArg, force: ForceOpt = False, verbose: VerboseOpt = False,
             workspace: WorkspaceOpt = None) -> None:
    """Run the checks on YOUR file; only if all pass, export it into tinytorch/ and record it."""
    ws, m = find_workspace(workspace), registry.get_module(module)
    result = course.complete(ws, m, force=force)
    _print_notes(result.report.notes)
    out.print(ui.check_summary(result.report, verbose=verbose))
    if not result.exported:
        out.print(f"[bold red]Module {m} is not complete:[/] nothing was exported and your "
                  "progress is unchanged.")
        raise typer.Exit(1)
    out.print(f"[green]✓ Module {m} complete:[/] exported to {escape(course.rel(ws, ws.exported_file(m)))}.")
    for milestone, parts in result.unlocked:
        out.print(ui.unlock_panel(milestone, parts))
    ui.say(f"[bold]Next:[/] {escape(course.next_step(ws))}", out)


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        out.print(f"[dim]{escape(note)}[/]", soft_wrap=True)


@app.command()
def reset(module: ModuleArg,
          list_backups_: Annotated[bool, typer.Option("--list-backups", help="List saved "
                                                      "versions.")] = False,
          restore_: Annotated[bool, typer.Option("--restore", help="Restore the newest backup "
                                                 "(or --backup NAME).")] = False,
          backup: Annotated[Optional[str], typer.Option("--backup", help="With --restore: part of "
                                                        "the backup's file name.")] = None,
          workspace: WorkspaceOpt = None) -> None:
    """Restore the stripped file, after backing up yours to .tito/backups (never deletes work)."""
    ws, m = find_workspace(workspace), registry.get_module(module)
    if list_backups_:
        backups = list_backups(ws, m)
        if not backups:
            out.print(f"No backups of module {m} yet.")
        for b in backups:
            out.print(f"  {escape(b.name)}  [dim]{escape(course.rel(ws, b))}[/]")
        return
    if restore_:
        chosen, saved = restore(ws, m, backup)
        out.print(f"Restored {chosen.name} into {course.rel(ws, ws.working_file(m))}.")
    else:
        course.gate(ws, m, force=True)  # refuses only 'coming' modules
        saved = reset_file(ws, m)
        out.print(f"Module {m} reset to its starting version.")
    if saved:
        out.print(f"Your previous file is saved as {course.rel(ws, saved)}.")


# ---------------------------------------------------------------------------------------------
# Top-level commands: `tito init`, `tito status`
# ---------------------------------------------------------------------------------------------
def init(directory: Annotated[Path, typer.Argument(help="Where to create the workspace.")]
         = Path("tinytorch-workspace"),
         solutions: Annotated[bool, typer.Option("--solutions", help="Instructor/reference "
                                                 "workspace: solutions in, every module complete.")]
         = False,
         no_activate: Annotated[bool, typer.Option("--no-activate", help="Do not make it this "
                                                   "environment's `tinytorch`.")] = False) -> None:
    """Create a learner workspace (module notebooks, your own tinytorch/ package); makes it this
    environment's `import tinytorch`."""
    before = activation.active()
    ws = init_workspace(directory, solutions=solutions, activate=not no_activate)
    kind = "reference workspace (solutions in, all built modules complete)" if solutions \
        else "workspace"
    out.print(f"[green]Created a {kind} in {escape(str(ws.root))}[/]", soft_wrap=True)
    if not no_activate:
        out.print(f"import tinytorch (in any folder, script or notebook of this Python) is now "
                  f"{escape(str(ws.package))}", soft_wrap=True)
        if before and before.resolve() != ws.root:
            out.print(f"[dim]It replaces {escape(str(before))} as the active workspace "
                      "(switch back with: tito workspace activate DIR).[/]", soft_wrap=True)
    first = registry.built_modules()[0]
    then = "tito milestone list" if solutions else f"tito module start {first.id}"
    ui.say(f"Next:  `cd {escape(course.rel(ws, ws.root))} && {then}`", out)
    out.print("[dim]README.md there explains the loop: start -> edit -> test -> complete.[/]")


def status(workspace: WorkspaceOpt = None) -> None:
    """One screen: your modules, the milestones you can run, and the next step."""
    ws = find_workspace(workspace)
    rows = course.module_rows(ws)
    is_active, line = activation.describe(ws.root)
    out.print(("[green]✓[/] " if is_active else "[yellow]![/] ") + escape(line), soft_wrap=True)
    coming = [r.module.id for r in rows if r.status == "coming"]
    out.print(ui.module_table([r for r in rows if r.status != "coming"],
                              title=f"TinyTorch workspace {ws.root}"))
    if coming:
        out.print(f"[dim]Modules {registry.compact_ids(coming)}: coming in a later release.[/]")
    done, achieved = ws.completed(), state.get_achievements(ws.root)
    table = Table(title="Milestones", title_justify="left")
    for col in ("id", "milestone", "year", "status"):
        table.add_column(col)
    for ms in registry.MILESTONES:
        parts_done = [p for p in ms.parts if achieved.get(ms.id, {}).get(str(p.number))]
        if mr.coming_modules(ms):
            label = "[dim]· coming[/]"
        elif len(parts_done) == len(ms.parts):
            label = "[green]✓ achieved[/]"
        elif registry.part_runnable(ms, ms.parts[0], done):
            label = "[cyan]ready to run[/]" + (f" ({len(parts_done)}/{len(ms.parts)} parts)"
                                               if parts_done else "")
        else:
            missing = registry.milestone_missing(ms, done)
            label = f"[dim]locked: needs {registry.compact_ids(m.id for m in missing)}[/]"
        table.add_row(ms.id, ms.title, str(ms.year), label)
    out.print(table)
    built = [r for r in rows if r.status != "coming"]
    n_done = sum(r.status == "complete" for r in built)
    ui.say(f"[bold]{n_done}/{len(built)}[/] built modules complete.  [bold]Next:[/] "
           f"{escape(course.next_step(ws, rows))}", out)


TOP_LEVEL = [init, status]
