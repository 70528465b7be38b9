"""`tito report`: a learner's progress as one self-contained HTML page.

    path = write_report(ws)                  # <workspace>/report.html
    text = build_report(ws)                  # the page as a string
    text = build_report(ws, checks=grades)   # with re-run check counts (tito.grading.run_module)

The page needs nothing beside it: inline CSS, every plot embedded as a base64 PNG, no script,
no font or image fetched from anywhere - it opens from a USB stick or an e-mail attachment, and
reads on a phone (viewport meta, one column, wide tables scroll inside their own box).

    Milestones   a timeline in history's order (1958 -> 2018): the status of each, and for every
                 recorded run (.tito/milestones.json) its measured values against the targets
                 and the plots it saved in its run folder (runs/NN_slug/<time>/partN/*.png)
    Modules      the 20 modules: status, the checks that passed when the module was completed
                 (.tito/progress.json: nothing is re-run unless asked), when

The HTML helpers at the bottom (page, table, badge, fmt_value, png_data_uri) are shared with
the class report of tito.grading.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

from tito import course, registry, state
from tito import milestone_run as mr
from tito.registry import Milestone, Part
from tito.workspace import Sources, Workspace

REPORT_NAME = "report.html"
MAX_RUNS_SHOWN = 5  # recorded runs per milestone part shown (newest first); older ones counted
MAX_PLOT_BYTES = 4 * 1024 * 1024  # a larger PNG is named, not embedded
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# The learner's report
# ---------------------------------------------------------------------------------------------
def write_report(ws: Workspace, out: Path | None = None, src: Sources | None = None,
                 checks: dict | None = None) -> Path:
    """Write the report (default: <workspace>/report.html); returns its path."""
    path = Path(out) if out else ws.root / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    state.write_atomic(path, build_report(ws, src, checks))
    return path


def build_report(ws: Workspace, src: Sources | None = None, checks: dict | None = None) -> str:
    """The whole page. `checks`: module id -> tito.grading.ModuleGrade, to show re-run counts."""
    src = src or Sources.installed()
    rows = course.module_rows(ws, src)
    records = state.load_progress(ws.root)["modules"]
    ach = state.get_achievements(ws.root)
    done = {r.module.id for r in rows if r.status == course.COMPLETE}
    built = [r for r in rows if r.module.built]
    achieved = sum(1 for ms in registry.MILESTONES for p in ms.parts if mr.part_achieved(ach, ms, p))
    summary = (f'<p class="chips">{badge(f"{len(done)}/{len(built)} modules complete", "ok")}'
               f'{badge(f"{achieved} milestone part(s) achieved", "ok" if achieved else "muted")}'
               f'</p>')
    body = [summary, "<h2>Milestones</h2>", '<ol class="timeline">']
    body += [_milestone(ws, ms, done, ach) for ms in registry.MILESTONES]
    body += ["</ol>", "<h2>Modules</h2>", _modules(rows, records, checks)]
    return page(f"TinyTorch progress: {ws.root.name}", "\n".join(body),
                subtitle=f"workspace {ws.root} - written {_now()}")


def _milestone(ws: Workspace, ms: Milestone, done: set[str], ach: dict) -> str:
    status = mr.milestone_status(ms, done, ach)
    kind = {mr.COMPLETE: "ok", mr.READY: "warn", mr.LOCKED: "muted", mr.COMING: "muted"}[status]
    parts = [_part(ws, ms, p, ach) for p in ms.parts if mr.part_achieved(ach, ms, p)]
    note = "" if status == mr.COMPLETE else f'<p class="note">{esc(mr.unlock_note(ms, done, ach))}</p>'
    return (f'<li class="milestone {kind}" id="milestone-{ms.id}"><div class="year">{ms.year}</div>'
            f'<div class="card"><h3>{esc(ms.id)} {esc(ms.title)} {badge(status.lower(), kind)}</h3>'
            f'<p class="who">{esc(ms.people)}: {esc(ms.context)}</p>{note}{"".join(parts)}'
            f"</div></li>")


def _part(ws: Workspace, ms: Milestone, part: Part, ach: dict) -> str:
    """One achieved part: each recorded run (newest first) with its values and its plots."""
    runs = [r for r in ach.get(ms.id, {}).get(str(part.number), []) if isinstance(r, dict)]
    runs = sorted(runs, key=lambda r: str(r.get("recorded_at", "")), reverse=True)
    title = f"part {part.number}: {part.name}" if len(ms.parts) > 1 else part.name
    out = [f'<section class="part"><h4>{esc(title)}</h4>']
    for rec in runs[:MAX_RUNS_SHOWN]:
        out.append(_run(ws, ms, part, rec))
    if len(runs) > MAX_RUNS_SHOWN:
        out.append(f'<p class="note">{len(runs) - MAX_RUNS_SHOWN} earlier recorded run(s) not '
                   f"shown</p>")
    out.append("</section>")
    return "".join(out)


def _run(ws: Workspace, ms: Milestone, part: Part, rec: dict) -> str:
    metrics = rec.get("metrics") if isinstance(rec.get("metrics"), dict) else {}
    rows = []
    for r in registry.evaluate(part.conditions, metrics):
        c = r.condition
        measured = ("✓ " if r.passed else "✗ ") + fmt_value(c.metric, r.value, c.op, r.target)
        rows.append([esc(c.label), badge(measured, "ok" if r.passed else "bad") + '<br><span '
                     f'class="note num">target {esc(fmt_target(c.metric, c.op, r.target))}</span>'])
    when = str(rec.get("recorded_at", "?")).replace("T", " ").split("+")[0]
    secs = rec.get("duration_s")
    head = f"run recorded {when}" + (f", trained in {secs:.1f} s" if isinstance(secs, (int, float))
                                     else "") + f", seed {esc(rec.get('seed', '?'))}"
    figures = []
    run_dir = run_folder(ws, ms, rec)
    for png in sorted(run_dir.glob("*.png")) if run_dir else []:
        uri = png_data_uri(png)
        if uri:
            figures.append(f'<figure><img src="{uri}" alt="{esc(ms.title)}: {esc(png.stem)}">'
                           f"<figcaption>{esc(png.name)}</figcaption></figure>")
        else:
            figures.append(f'<p class="note">{esc(png.name)}: not embedded (not a PNG, or over '
                           f"{MAX_PLOT_BYTES // 2**20} MB)</p>")
    if run_dir is None:
        figures.append('<p class="note">the run folder is gone: no plots</p>')
    return (f'<div class="run"><p class="when">{esc(head)}</p>'
            f'{table(["victory condition", "measured"], rows)}'
            f'<div class="plots">{"".join(figures)}</div></div>')


def run_folder(ws: Workspace, ms: Milestone, rec: dict) -> Path | None:
    """The folder a recorded run saved its files in; found again under <workspace>/runs/ when
    the workspace was moved since (the record keeps the absolute path it had)."""
    raw = rec.get("run_dir")
    if not isinstance(raw, str) or not raw:
        return None
    path = Path(raw)
    if path.is_dir():
        return path
    moved = ws.root / "runs" / f"{ms.id}_{ms.slug}" / path.parent.name / path.name
    return moved if moved.is_dir() else None


def _modules(rows: list, records: dict, checks: dict | None) -> str:
    heads = ["module", "status", "checks passed", "completed"]
    if checks is not None:
        heads.insert(3, "checks now")
    out = []
    for r in rows:
        m, rec = r.module, records.get(r.module.id, {})
        kind = {course.COMPLETE: "ok", course.IN_PROGRESS: "warn", course.AVAILABLE: "warn"}.get(
            r.status, "muted")
        status = badge(r.status, kind) + (f' <span class="note">{esc(r.note)}</span>' if r.note else "")
        passed = rec.get("checks_passed")
        cells = [f"{esc(m.id)} {esc(m.name)}", status,
                 esc(passed) if isinstance(passed, int) else "-",
                 esc(str(rec.get("completed_at", "")).split("T")[0]) or "-"]
        if checks is not None:
            g = checks.get(m.id)
            cells.insert(3, "-" if g is None else f"{badge(g.status, _GRADE_KIND.get(g.status, 'muted'))}"
                         f" {g.passed}/{g.total}")
        out.append(cells)
    return table(heads, out)


_GRADE_KIND = {"pass": "ok", "fail": "bad", "timeout": "bad", "error": "bad", "missing": "muted"}


# ---------------------------------------------------------------------------------------------
# HTML helpers (shared with tito.grading's class report)
# ---------------------------------------------------------------------------------------------
CSS = """
:root { --fg: #1d232b; --muted: #5b6672; --line: #d8dde3; --bg: #ffffff; --card: #f5f7f9;
        --ok: #1f7a3a; --ok-bg: #e3f4e8; --bad: #a32020; --bad-bg: #fbe4e4;
        --warn: #8a5a00; --warn-bg: #fdf1d8; --accent: #2b5fab; }
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto,
       sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 62rem; margin: 0 auto; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; color: var(--accent); }
h2 { font-size: 1.25rem; margin: 1.8rem 0 .6rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 0 0 .3rem; }
h4 { font-size: .95rem; margin: .8rem 0 .3rem; }
.subtitle, .note, .who, .when { color: var(--muted); font-size: .9rem; margin: .2rem 0; }
.subtitle { overflow-wrap: anywhere; }
.chips { display: flex; flex-wrap: wrap; gap: .4rem; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-size: .8rem;
         font-weight: 600; white-space: nowrap; vertical-align: middle; }
.badge.ok { color: var(--ok); background: var(--ok-bg); }
.badge.bad { color: var(--bad); background: var(--bad-bg); }
.badge.warn { color: var(--warn); background: var(--warn-bg); }
.badge.muted { color: var(--muted); background: var(--card); border: 1px solid var(--line); }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: .4rem 0; max-width: 100%; }
table { border-collapse: collapse; font-size: .9rem; min-width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: var(--card); white-space: nowrap; }
td { overflow-wrap: break-word; }
ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 3px solid var(--line); }
ol.timeline > li { position: relative; margin: 0 0 1rem; padding-left: 1rem; }
ol.timeline > li::before { content: ""; position: absolute; left: -.55rem; top: .35rem;
         width: .8rem; height: .8rem; border-radius: 50%; background: var(--line); }
ol.timeline > li.ok::before { background: var(--ok); }
ol.timeline > li.warn::before { background: var(--warn); }
.year { font-weight: 700; color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .5rem;
        padding: .7rem .8rem; min-width: 0; }
.run { border-top: 1px dashed var(--line); margin-top: .6rem; padding-top: .4rem; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: .6rem; }
figure { margin: 0; background: var(--bg); border: 1px solid var(--line); border-radius: .4rem;
         padding: .3rem; }
figure img { display: block; width: 100%; height: auto; }
figcaption { font-size: .8rem; color: var(--muted); text-align: center; overflow-wrap: anywhere; }
code { font-size: .85em; overflow-wrap: anywhere; }
.num { white-space: nowrap; }
@media (max-width: 40rem) {
  body { padding: .6rem; font-size: 15px; }
  ol.timeline > li { padding-left: .7rem; }
  .card { padding: .5rem; }
  .plots { grid-template-columns: 1fr; }
  th, td { padding: .25rem .35rem; }
}
"""


def page(title: str, body: str, subtitle: str = "") -> str:
    """A complete HTML document: viewport meta, inline CSS, nothing fetched."""
    sub = f'<p class="subtitle">{esc(subtitle)}</p>' if subtitle else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{esc(title)}</h1>\n{sub}\n{body}\n</main>\n</body>\n</html>\n")


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def badge(text: str, kind: str = "muted") -> str:
    return f'<span class="badge {kind}">{esc(text)}</span>'


def table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table in a box that scrolls sideways on a narrow screen. Cells are HTML (escape first)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


fmt_value, fmt_target = registry.format_value, registry.format_target  # (shared with grading)


def png_data_uri(path: Path) -> str | None:
    """`data:image/png;base64,...` for a real PNG file of at most MAX_PLOT_BYTES; else None."""
    try:
        if Path(path).stat().st_size > MAX_PLOT_BYTES:
            return None
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
