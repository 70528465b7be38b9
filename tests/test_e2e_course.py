"""End to end on the REAL course, as a learner would go: `tito init`, then for each built module
in order put the reference solution into the learner's file and `tito module complete` it.

Acceptance (issue 3): unlock panels appear exactly when the registry says - after 03 milestones 01
and 02, after 08 milestone 03 - and never earlier; a stub or an injected bug fails, names the
function, exports nothing and leaves progress unchanged.

One workspace is shared by the whole file (module-scoped fixture): the real checks run once per
module, which is what keeps this affordable.
"""

import os

import pytest
from helpers_course import run_cli, without_torch

from tito import registry
from tito.workspace import Sources

pytestmark = pytest.mark.slow
BUILT = registry.built_modules()
BUG = ("@ self.weight.data.T", "@ self.weight.data")  # a transposed weight in Linear.forward


def _progress(ws_root):
    return (ws_root / ".tito" / "progress.json").read_bytes()


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """Run the whole course once, as a plain install would (no PyTorch: the checks' torch oracles
    skip); return everything the tests below look at."""
    with pytest.MonkeyPatch.context() as mp:
        shim = without_torch(tmp_path_factory.mktemp("no-torch"))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")])))
        return _journey(tmp_path_factory)


def _journey(tmp_path_factory):
    src = Sources.installed()
    root = tmp_path_factory.mktemp("e2e") / "ws"
    code, out, err = run_cli(["init", str(root)])
    assert code == 0, out + err
    tito = lambda *a: run_cli(list(a), cwd=root)  # noqa: E731
    j = {"root": root, "complete": {}, "written": {}}

    # a stub cannot be completed
    before = _progress(root)
    j["stub"] = tito("module", "complete", "01") + (before == _progress(root),)

    for m in BUILT:
        wf = root / "modules" / m.key / m.file_name
        reference = src.reference_text(m)
        if m.name == "layers":  # a learner's transposed weight must fail, name Linear.forward
            assert BUG[0] in reference
            wf.write_text(reference.replace(BUG[0], BUG[1]))
            before = _progress(root)
            j["bug"] = tito("module", "complete", m.id) + (before == _progress(root),
                                                          (root / "tinytorch" / "layers.py").exists())
        wf.write_text(reference)
        j["written"][m.id] = reference
        j["complete"][m.id] = tito("module", "complete", m.id)
    j["status"] = tito("status")
    return j


def test_every_built_module_completes(journey):
    for mid, (code, out, err) in journey["complete"].items():
        assert code == 0, f"module {mid} did not complete:\n{out}\n{err}"
        m = registry.get_module(mid)
        assert (journey["root"] / "tinytorch" / m.file_name).read_text() == journey["written"][mid]


def test_unlock_panels_exactly_when_the_registry_says(journey):
    panels = {mid: out.count("milestone unlocked") for mid, (_, out, _) in journey["complete"].items()}
    expected = {m.id: len(registry.unlock_events(
        {x.id for x in BUILT if int(x.id) < int(m.id)}, {x.id for x in BUILT if int(x.id) <= int(m.id)}))
        for m in BUILT}
    assert panels == expected
    # the wording, literally: after 03 milestones 01 and 02, after 08 milestone 03
    out03, out08 = journey["complete"]["03"][1], journey["complete"]["08"][1]
    assert "Milestone 01: The Perceptron (1958)" in out03 and "tito milestone run 01" in out03
    assert "Milestone 02: The XOR Crisis (1969)" in out03
    assert "Milestone 03: The MLP Revival (1986)" in out08 and "tito milestone run 03" in out08
    out13 = journey["complete"]["13"][1]  # the transformer completes the language tier
    assert "Milestone 05: The Transformer Era (2017)" in out13 and "tito milestone run 05" in out13
    out19 = journey["complete"]["19"][1]  # benchmarking completes the optimization tier
    assert "Milestone 06: MLPerf (2018)" in out19 and "tito milestone run 06" in out19
    for mid in ("01", "02", "10", "11", "12", *(f"{i}" for i in range(14, 19))):
        assert panels[mid] == 0
    for mid in ("04", "05", "06", "07"):
        assert "Milestone 03" not in journey["complete"][mid][1]


def test_stub_fails_exports_nothing(journey):
    code, out, err, unchanged = journey["stub"]
    assert code == 1 and unchanged and "nothing was exported" in out
    assert "Tensor.__init__" in out  # the function at fault
    assert "Traceback" not in err


def test_injected_bug_fails_and_names_linear_forward(journey):
    code, out, err, unchanged, exported = journey["bug"]
    assert code == 1 and unchanged and not exported
    assert "Linear.forward" in out and "nothing was exported" in out


def test_status_after_the_journey(journey):
    code, out, _ = journey["status"]
    assert code == 0 and f"{len(BUILT)}/{len(BUILT)} built modules complete" in out
    assert "ready to run" in out
