"""`tito report`: a real workspace (the reference's solutions, `tito init --solutions`) that ran
milestone 01 on its own package and completed module 05 through the checks; the page it writes
is checked for what it says (measured values, plots byte for byte, check counts from the state)
and then loaded in a real headless Chromium at a phone's size: it loads without errors, every
image decodes, nothing scrolls sideways, and the screenshot is not blank.
"""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers_course import make_fake_sources, run_cli

from tito import course, registry, state
from tito.report import build_report, fmt_value
from tito.workspace import Workspace, init_workspace

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PHONE = (390, 844)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A learner who achieved milestone 01 (a real run on their package) and completed 05."""
    root = tmp_path_factory.mktemp("report") / "ws"
    ws = init_workspace(root, solutions=True)
    code, out, err = run_cli(["milestone", "run", "01", "-w", str(ws.root)])
    assert code == 0, out + err
    result = course.complete(ws, registry.get_module("05"))
    assert result.exported, result.report.failures()
    return ws


@pytest.fixture(scope="module")
def written(ws):
    code, out, err = run_cli(["report", "-w", str(ws.root)])
    assert code == 0, out + err
    path = ws.root / "report.html"
    assert f"Wrote {path}" in out
    return path


def _milestone(page: str, mid: str) -> str:
    start = page.index(f'id="milestone-{mid}"')
    end = page.find('<li class="milestone', start)
    return page[start:end if end > 0 else None]


def test_the_page_is_self_contained(written):
    page = written.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta name="viewport"' in page
    assert "<style>" in page and "<script" not in page and "<link" not in page
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs)


def test_the_milestone_shows_its_measured_values_and_every_plot(ws, written):
    from PIL import Image

    page = written.read_text(encoding="utf-8")
    rec = state.get_achievements(ws.root)["01"]["1"][0]
    part = registry.get_milestone("01").parts[0]
    section = _milestone(page, "01")
    assert "The Perceptron" in section and ">complete<" in section
    for c in part.conditions:  # each victory condition with the value the run measured
        shown = fmt_value(c.metric, float(rec["metrics"][c.metric]), c.op, c.target)
        assert f"<td>{c.label}</td><td><span class=\"badge ok\">✓ {shown}</span>" in section
    pngs = sorted(Path(rec["run_dir"]).glob("*.png"))
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)"', section)
    assert len(pngs) >= 2 and len(embedded) == len(pngs)
    for png, data in zip(pngs, embedded):
        raw = base64.b64decode(data)
        assert raw == png.read_bytes()
        assert min(Image.open(io.BytesIO(raw)).size) > 100
    assert "<img" not in _milestone(page, "04")  # not achieved: no run, no plot
    assert ">locked<" in _milestone(page, "04") or ">ready to run<" in _milestone(page, "04")


def test_the_modules_show_the_check_counts_recorded_in_the_state(ws, written):
    page = written.read_text(encoding="utf-8")
    modules = page[page.index("<h2>Modules</h2>"):]
    recorded = state.load_progress(ws.root)["modules"]
    assert recorded["05"]["checks_passed"] > 0 and "checks_passed" not in recorded["01"]
    row = re.search(r"<tr><td>05 dataloader</td>(.*?)</tr>", modules).group(1)
    assert f"<td>{recorded['05']['checks_passed']}</td>" in row and ">complete<" in row
    row = re.search(r"<tr><td>01 tensor</td>(.*?)</tr>", modules).group(1)
    assert "<td>-</td>" in row  # completed by `init --solutions`: no check run was recorded
    assert ">complete<" in re.search(r"<tr><td>20 capstone</td>(.*?)</tr>", modules).group(1)


def test_a_moved_workspace_still_finds_its_plots(ws, tmp_path):
    moved = Workspace(tmp_path / "elsewhere")
    shutil.copytree(ws.root, moved.root)
    rec = state.get_achievements(moved.root)["01"]["1"][0]
    old = Path(rec["run_dir"])  # the record keeps the folder the run had: the original's
    n = len(list(old.glob("*.png")))
    hidden = old.with_name(old.name + "-hidden")
    old.rename(hidden)  # as if the original workspace were gone
    try:
        page = build_report(moved)
    finally:
        hidden.rename(old)
    assert str(moved.root) in page and n >= 2
    assert len(re.findall(r"<img ", _milestone(page, "01"))) == n


def test_a_fresh_workspace_has_nothing_achieved(tmp_path):
    src = make_fake_sources(tmp_path / "course")
    fresh = init_workspace(tmp_path / "ws", src=src)
    page = build_report(fresh, src=src)
    assert "<img" not in page and "0 milestone part(s) achieved" in page
    assert f"0/{len(registry.built_modules())} modules complete" in page
    assert ">locked<" in _milestone(page, "01")


# ---------------------------------------------------------------------------------------------
# A real browser
# ---------------------------------------------------------------------------------------------
def find_browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


# The page is loaded into a 390 px wide frame of a probe page (headless Chromium lays a window out
# at least 500 px wide; a frame is laid out at exactly its width). The page itself gets one
# script first in its <head> that records every error (scripts, images); when the frame has
# loaded, the probe writes what the browser saw onto its own <body>, for --dump-dom.
ERRORS = """<script>window.probeErrors = [];
window.addEventListener("error", function (e) {
  probeErrors.push(e.message || (e.target && e.target.tagName) || e.type); }, true);</script>"""
PROBE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe id="page" style="width:%dpx;height:%dpx;border:0" srcdoc="%s"></iframe>
<script>
var f = document.getElementById("page");
f.addEventListener("load", function () {
  var w = f.contentWindow, d = f.contentDocument, b = document.body;
  var imgs = Array.prototype.slice.call(d.images);
  var titles = Array.prototype.slice.call(d.querySelectorAll("li.milestone h3"));
  b.setAttribute("data-images", imgs.length);
  b.setAttribute("data-png-data-uris", imgs.filter(function (i) {
    return i.getAttribute("src").indexOf("data:image/png;base64,") === 0; }).length);
  b.setAttribute("data-decoded", imgs.filter(function (i) {
    return i.complete && i.naturalWidth > 0; }).length);
  b.setAttribute("data-page-width", d.documentElement.scrollWidth);
  b.setAttribute("data-viewport", w.innerWidth);
  b.setAttribute("data-titles", titles.map(function (t) { return t.textContent; }).join(" | "));
  b.setAttribute("data-errors", w.probeErrors.join(" | "));
});
</script></body></html>"""


def load_in_browser(page: Path, tmp: Path, browser: str) -> tuple[dict, Path]:
    """Open `page` in headless Chromium at a phone's size: (what the browser saw, a screenshot)."""
    text = page.read_text(encoding="utf-8")
    probe = tmp / f"probe-{page.name}"
    probe.write_text(PROBE % (*PHONE, html.escape(text.replace("<head>", "<head>" + ERRORS, 1))),
                     encoding="utf-8")
    shot = tmp / f"{page.stem}.png"
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--hide-scrollbars", f"--user-data-dir={tmp / 'chromium-profile'}",
            f"--window-size={PHONE[0]},{PHONE[1]}"]
    dom = subprocess.run(base + ["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    seen = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1))) if body else {}
    assert "errors" in seen, f"the probe did not run: {dom.stdout[:300]} {dom.stderr[-1000:]}"
    snap = subprocess.run(base + [f"--screenshot={shot}", page.as_uri()], capture_output=True,
                          text=True, timeout=180)
    assert snap.returncode == 0 and shot.exists(), snap.stderr[-2000:]
    return {k: html.unescape(v) for k, v in seen.items()}, shot


def assert_not_blank(shot: Path) -> None:
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == PHONE
    colours = img.getcolors(maxcolors=PHONE[0] * PHONE[1])
    ink = sum(n for n, rgb in colours if sum(rgb) < 3 * 235)  # clearly not white
    assert len(colours) > 50, f"{len(colours)} colours: blank?"
    assert ink > 0.03 * PHONE[0] * PHONE[1], f"only {ink} non-white pixels"


@pytest.mark.skipif(find_browser() is None, reason="no Chromium or Chrome on this machine (Debian: "
                    "apt-get install chromium)")
def test_the_page_in_a_real_browser_on_a_phone(ws, written, tmp_path):
    seen, shot = load_in_browser(written, tmp_path, find_browser())
    rec = state.get_achievements(ws.root)["01"]["1"][0]
    pngs = list(Path(rec["run_dir"]).glob("*.png"))
    assert seen["errors"] == ""
    assert int(seen["images"]) == int(seen["png-data-uris"]) == int(seen["decoded"]) == len(pngs)
    assert int(seen["viewport"]) == PHONE[0]
    assert int(seen["page-width"]) <= PHONE[0], "the page scrolls sideways on a phone"
    titles = seen["titles"].split(" | ")
    assert [t.split()[0] for t in titles] == [ms.id for ms in registry.MILESTONES]
    assert all(ms.title in t for ms, t in zip(registry.MILESTONES, titles))
    assert_not_blank(shot)


@pytest.mark.skipif(find_browser() is None, reason="no Chromium or Chrome on this machine (Debian: "
                    "apt-get install chromium)")
def test_the_browser_check_sees_a_broken_page(tmp_path):
    """The same probe on a page with a corrupt image and a fixed-width block: it notices both."""
    from tito.report import page

    bad = tmp_path / "bad.html"
    bad.write_text(page("broken", '<img src="data:image/png;base64,iVBORw0KGgoAAAA" alt="x">'
                                  '<div style="width:900px">too wide</div>'), encoding="utf-8")
    seen, _ = load_in_browser(bad, tmp_path, find_browser())
    assert seen["images"] == "1" and seen["decoded"] == "0" and seen["errors"] == "IMG"
    assert int(seen["page-width"]) > PHONE[0]
