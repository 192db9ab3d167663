"""The HTML report as a person sees it: every section present, self-contained, and rendered in
headless Chromium (Debian's ``chromium``) with ``--dump-dom`` and ``--screenshot``: every section in
the DOM, no broken image, a screenshot that is not blank. `make test` installs chromium when the
machine allows; without it the browser test is skipped with a loud reason."""

from __future__ import annotations

import csv
import html.parser
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import report_store as rs
from shared_data import SHARED_DATA

MVH = SHARED_DATA / "model-vs-human" / "cue-conflict"


class _Dom(html.parser.HTMLParser):
    """Section ids, images (src, broken flag set by the page script) and no-data notes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[dict[str, str]] = []
        self.no_data = 0
        self.errors = 0
        self.body: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "report-section" in (a.get("class") or ""):
            self.sections.append(a.get("id") or "")
        if tag == "img":
            self.images.append(a)
        if tag == "p" and a.get("class") == "no-data":
            self.no_data += 1
        if tag == "p" and a.get("class") == "figure-error":
            self.errors += 1
        if tag == "body":
            self.body = a


def _parse(text: str) -> _Dom:
    dom = _Dom()
    dom.feed(text)
    return dom


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> Path:
    if not MVH.is_dir():
        pytest.skip(f"shared data missing: {MVH}")
    from analysis.report import write_report

    root = tmp_path_factory.mktemp("report")
    store = root / "store"
    rs.import_csvs(store, sorted(MVH.glob("*.csv")), "20260101T000000Z-aaaaaa", started_at="2026-01-01T00:00:00Z")
    rs.probe_tables(store, "20260108T000000Z-bbbbbb", started_at="2026-01-08T00:00:00Z")
    # a second dated import of a subset: the over-time figure gets two dates
    rs.import_csvs(store, sorted(MVH.glob("*resnet50*.csv")), "20260115T000000Z-cccccc",
                   started_at="2026-01-15T00:00:00Z")
    return write_report(store, out=root / "out" / "report.html")


def test_empty_store_report_has_every_section_with_a_no_data_note(tmp_path):
    from analysis.db import connect
    from analysis.report import SECTION_IDS, build_report

    connect(tmp_path, read_only=False).close()
    dom = _parse(build_report(tmp_path))
    assert dom.sections == list(SECTION_IDS)
    assert dom.images == []
    assert dom.no_data == len(SECTION_IDS)
    assert dom.errors == 0


def test_quickstart_report_lands_in_the_store_by_default(tmp_path):
    from analysis.db import connect
    from analysis.report import SECTION_IDS, write_quickstart_report

    store = tmp_path / "store"
    connect(store, read_only=False).close()
    path = write_quickstart_report(store)
    assert path == (store / "report.html").resolve()
    assert _parse(path.read_text()).sections == list(SECTION_IDS)
    other = write_quickstart_report(store, tmp_path / "elsewhere" / "r.html")
    assert other.is_file() and other.parent.name == "elsewhere"


@pytest.mark.shared_data("model-vs-human/cue-conflict")
def test_full_report_is_self_contained_with_every_figure(full_report):
    from analysis.report import SECTION_IDS

    text = full_report.read_text()
    dom = _parse(text)
    assert dom.sections == list(SECTION_IDS)
    assert dom.errors == 0
    assert dom.no_data == 0, "every section of this store has data"
    figures = {img["data-figure"] for img in dom.images}
    assert figures == {"shape-bias-matrix", "shape-bias-box", "error-consistency", "layer-stats",
                       "texture-discriminability", "reconstructions", "loss-curves", "gram-heatmaps",
                       "visualizations", "exemplars", "gram-clusters", "feature-maps", "dislocator-effect",
                       "study-over-time"}
    assert all(img["src"].startswith("data:image/png;base64,") for img in dom.images)
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", text), "no external resource"
    # the shape-bias table: ResNet-50's Wilson interval, from its CSV counted here (Wilson 1927, z = 1.96)
    s = t = 0
    with (MVH / "cue-conflict_resnet50_session-1.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            shape, texture = re.search(r"([a-z]+)\d+-([a-z]+)\d+\.png$", row["imagename"]).groups()
            if shape != texture:
                s += row["object_response"] == shape
                t += row["object_response"] == texture
    n, z = s + t, 1.959963984540054
    p = s / n
    mid, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = (mid - half) / (1 + z * z / n), (mid + half) / (1 + z * z / n)
    assert "Wilson 95%" in text and f"[{lo:.3f}, {hi:.3f}]" in text
    assert "subject-01" in text and "mvh:resnet50" in text
    assert "<h3>Conditions</h3>" in text and "toynet-clf" in text  # the dislocator_effect table
    assert "ImageSetError" in text and "20260108T000000Z-bbbbbb" in text


_PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-broken', String(broken.length));
  document.body.setAttribute('data-loaded', 'yes');
});
</script></body>"""


@pytest.mark.shared_data("model-vs-human/cue-conflict")
def test_report_renders_in_headless_chromium(full_report, tmp_path):
    from analysis.report import SECTION_IDS

    from analysis.report_browser import dump_dom, find_chromium, screenshot

    if find_chromium() is None:
        pytest.skip("!!! BROWSER TEST SKIPPED: chromium is not installed (`apt-get install chromium`, or `make test` "
                    "as root installs it) — the report was NOT checked in a browser !!!")
    # a copy with a probe script that records, after load, how many images failed to decode
    probed = tmp_path / "probed.html"
    probed.write_text(full_report.read_text().replace("</body>", _PROBE, 1))
    dom = _parse(dump_dom(probed))
    assert dom.sections == list(SECTION_IDS)
    assert dom.body.get("data-loaded") == "yes", "the page's load event never fired"
    assert dom.body.get("data-images") == "14"
    assert dom.body.get("data-broken") == "0", "broken images in the rendered report"

    shot = screenshot(full_report, tmp_path / "shot.png", width=1280, height=2400)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1200
    # not blank: a real page has dark text/markers and the humans' red among mostly light background
    assert pixels.std() > 0.1
    dark = (pixels.mean(axis=2) < 0.35).mean()
    assert 0.005 < dark < 0.6, dark
    red = (np.abs(pixels - np.array([165, 30, 55]) / 255).max(axis=2) < 0.08).mean()
    assert red > 1e-4, "no humans' red (165, 30, 55) anywhere on the first screen"


def test_analysis_report_and_plots_import_neither_torch_nor_pipelines():
    code = ("import sys, analysis.report, analysis.plots, analysis.report_browser; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pipelines', 'nstcore', 'ray')); "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_report_command_writes_the_file_and_refuses_bad_names_in_one_line(tmp_path):
    import typer
    from typer.testing import CliRunner

    from analysis.db import connect
    from pipelines import commands_report

    store = tmp_path / "store"
    connect(store, read_only=False).close()
    app = typer.Typer()
    commands_report.register(app)
    run = CliRunner().invoke
    res = run(app, ["report", "--out", str(tmp_path / "r.html"), "--store", str(store)])
    assert res.exit_code == 0 and (tmp_path / "r.html").is_file(), res.output
    res = run(app, ["report", "--out", str(tmp_path / "r.pdf"), "--store", str(store)])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "name it .html" in res.output
    res = run(app, ["report", "--out", str(tmp_path / "r2.html"), "--store", str(store), "--screenshot",
                    str(tmp_path / "s.jpg")])
    assert res.exit_code == 2 and "name it .png" in res.output and not (tmp_path / "r2.html").exists()
    res = run(app, ["report", "--out", str(tmp_path / "r.html"), "--store", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output


def test_a_figure_that_cannot_be_drawn_says_so_and_the_rest_of_the_report_stands(tmp_path):
    from analysis.report import SECTION_IDS, build_report

    run = "20260101T000000Z-aaaaaa"
    # a Gram row whose upper triangle does not fit its channel count (4 channels need 10 values)
    rs.write_part(tmp_path, "grams", run, [dict(run_id=run, image_id="x" * 64, backbone="toynet", layer="stem",
                                                layer_index=0, channels=4, gram=[1.0, 2.0, 3.0])])
    dom = _parse(build_report(tmp_path))
    assert dom.sections == list(SECTION_IDS)
    assert dom.errors == 1 and dom.no_data == len(SECTION_IDS) - 1
