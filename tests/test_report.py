"""The `evaluate --report` page renders in headless Chromium with its tables and images, no console errors."""

import json
import os
import shutil
import subprocess

import pytest

from evaluate_helpers import build

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
                 "--v=0", "--dump-dom"]
# Appended to a copy of the report (the report itself has no script): flags images that did not decode.
PROBE = """<script>window.addEventListener("load", function () {
  var imgs = document.querySelectorAll("img"), bad = 0;
  for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad++; }
  if (bad) console.error("broken images: " + bad);
  var p = document.createElement("p"); p.id = "probe"; p.textContent = "images=" + imgs.length + " bad=" + bad;
  document.body.appendChild(p);
});</script>"""


def chromium() -> str:
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if exe is None:
        pytest.skip("Chromium is not installed: `make test` installs Debian's chromium package when apt-get is "
                    "available and it runs as root; install it with `apt-get install -y chromium`")
    return exe


@pytest.fixture(scope="module")
def report(tmp_path_factory, demo_data):
    built = build(tmp_path_factory.mktemp("report_models"), demo_data)
    out = tmp_path_factory.mktemp("report")
    files = [s.path for s in built["dataset"].splits["test"]]
    groups = out / "groups.csv"
    groups.write_text("".join(f"{f.name},{'camera_a' if i % 3 else 'camera_b'}\n" for i, f in enumerate(files)))
    from edgecnn.evaluation.evaluate import evaluate

    result = evaluate([built["broken_bundle"]], built["broken_run"], groups_csv=groups, max_drop=1.0,
                      report=out / "report.html",
                      robustness={"kinds": ["motion_blur", "jpeg"], "severities": [2, 4], "epsilons": [4.0]})
    return out / "report.html", result


def test_report_files(report):
    html_path, result = report
    data = json.loads((html_path.parent / "report.json").read_text())
    assert data["gate"]["passed"] is False and data["debug"]["worst_layer"] == "conv_bad"
    text = html_path.read_text()
    # confusion matrices, per-class drops, risk-coverage, robustness curves
    assert text.count("data:image/png;base64,") == 4
    assert data["robustness"]["models"] == ["float", "int8"] and data["robustness"]["fgsm"]["epsilons"] == [0.0, 4.0]
    assert "<h2 id='robustness'>Robustness</h2>" in text and "FGSM (crafted on the float model)" in text
    assert "http://" not in text and "https://" not in text  # self-contained


def test_report_renders_in_chromium(report, tmp_path):
    exe = chromium()
    html_path, _ = report
    page = tmp_path / "page.html"
    page.write_text(html_path.read_text().replace("</body>", PROBE + "</body>"))
    proc = subprocess.run([exe, *CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'profile'}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    assert dom.count("<table>") >= 4  # models, vs float, per class, groups, layers
    assert "Confusion matrices" in dom and "Risk-coverage" in dom and "camera_a" in dom and "conv_bad" in dom
    assert "Robustness" in dom and "motion_blur 4" in dom
    assert 'id="probe">images=4 bad=0<' in dom
