"""The HTML report of a small run, opened in headless Chromium.

A probe script is added to a copy of the page; on load it writes what it
found into the DOM (images that did not load, figures wider than the
viewport, errors and console.error calls), and ``--dump-dom`` hands the DOM
back. No driver library: Chromium's command line is enough. Chromium is
Debian's package (``apt-get install -y chromium``); without it the test is
skipped.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from analysis import commands
from trainables.languages import PAPER_POS_LANGUAGES

pytestmark = pytest.mark.slow

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(name)), None)

PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (event) {
    var target = event.target;
    errors.push(target && target !== window
      ? "failed to load " + (target.currentSrc || target.src || target.href || target.tagName)
      : "error: " + event.message);
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    errors.push("unhandled rejection: " + event.reason);
  });
  var original = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    var width = document.documentElement.clientWidth, problems = [], figures = 0;
    Array.prototype.forEach.call(document.images, function (image) {
      if (!(image.complete && image.naturalWidth > 0))
        problems.push("image not loaded: " + (image.alt || image.src));
    });
    Array.prototype.forEach.call(document.querySelectorAll("svg, img"), function (element) {
      if (element.parentElement.closest("svg")) return;      // a part of a figure
      figures += 1;
      var box = element.getBoundingClientRect();
      var name = element.getAttribute("aria-label") || element.getAttribute("alt") || element.tagName;
      if (box.width < 1 || box.height < 1) problems.push("figure not shown: " + name);
      if (box.left < 0 || box.right > width + 0.5)
        problems.push("figure wider than the viewport (" + Math.round(box.width) + " px > "
                      + width + " px): " + name);
    });
    if (document.documentElement.scrollWidth > width)
      problems.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " px");
    var out = document.createElement("pre");
    out.id = "browser-checks";
    out.textContent = JSON.stringify({width: width, figures: figures, problems: problems,
                                      errors: errors});
    document.body.appendChild(out);
  });
})();
</script>"""


def write_run(directory) -> None:
    """A finished run directory: PoS on 34 languages, 4 strategies, 3 seeds,
    one outlier (th +46 under full realignment) and one errored trial."""
    rng = np.random.default_rng(7)
    (directory / "results").mkdir(parents=True)
    (directory / "errors").mkdir()
    trials = []
    shifts = {"baseline": 0.0, "full": 0.01, "front": 0.005, "back": -0.01}
    for strategy, shift in shifts.items():
        for seed in (1, 2, 3, 4):
            trial_id = f"{strategy}_s{seed}"
            spec = {"model": "xlm-roberta-base", "task": "pos", "strategy": strategy,
                    "aligner": "dico", "schedule": "before", "seed": seed}
            trials.append({"trial_id": trial_id, "spec": spec})
            if seed == 4:
                if strategy == "back":
                    (directory / "errors" / f"{trial_id}.json").write_text(json.dumps(
                        {"trial_id": trial_id, "status": "error", "spec": spec,
                         "error": "CUDA out of memory"}))
                continue
            metrics = {language: {"accuracy": 0.5 + 0.01 * (index % 9) + shift
                                  + (0.46 if (language, strategy) == ("th", "full") else 0)
                                  + rng.normal(0, 0.004)}
                       for index, language in enumerate(PAPER_POS_LANGUAGES)}
            (directory / "results" / f"{trial_id}.json").write_text(json.dumps({
                "trial_id": trial_id, "status": "completed", "spec": spec, "metrics": metrics,
                "english": {"accuracy": 0.9 + shift}, "provenance": {"num_blocks": 12}}))
    (directory / "experiment.json").write_text(json.dumps({"name": "small", "trials": trials}))


def open_in_browser(page, width: int, profile) -> dict:
    """The probe's findings for ``page`` in a ``width``-pixel-wide window."""
    text = page.read_text(encoding="utf-8")
    probed = page.with_name(f"probed-{width}-{page.name}")
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    done = subprocess.run(
        [BROWSER, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         "--no-first-run", f"--user-data-dir={profile}", f"--window-size={width},1000",
         "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=180, check=False)
    found = re.search(r'<pre id="browser-checks">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, f"the probe left no result (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    directory = tmp_path_factory.mktemp("browser")
    write_run(directory / "run")
    root = argparse.ArgumentParser()
    commands.add_analyze_arguments(root)
    out = directory / "report.html"
    assert commands.run_analyze(root.parse_args(
        [str(directory / "run"), "--out", str(out), "--bootstrap", "200"])) == 0
    return out


@pytest.mark.skipif(BROWSER is None, reason="no chromium on this machine (Debian: apt-get "
                                            "install -y chromium)")
@pytest.mark.parametrize("width", [1280, 600])
def test_the_report_renders_cleanly_in_chromium(report, width, tmp_path):
    checks = open_in_browser(report, width, tmp_path / "profile")
    assert checks["width"] == width
    assert checks["figures"] == 2            # delta bars, heatmap (no depth variants)
    assert checks["problems"] == []
    assert checks["errors"] == []


@pytest.mark.skipif(BROWSER is None, reason="no chromium on this machine (Debian: apt-get "
                                            "install -y chromium)")
def test_the_probe_sees_a_broken_page(tmp_path):
    """The checks above can fail: a missing image, a too wide figure, an error."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        '<img alt="missing" src="missing.png">'
        '<svg aria-label="wide" width="3000" height="10"></svg>'
        '<script>console.error("drawn wrong"); undefined_function();</script>'
        "</body></html>", encoding="utf-8")
    checks = open_in_browser(page, 800, tmp_path / "profile")
    assert checks["figures"] == 2
    assert "image not loaded: missing" in checks["problems"]
    assert "figure wider than the viewport (3000 px > 800 px): wide" in checks["problems"]
    assert "the page scrolls sideways: 3008 px" in checks["problems"]
    assert any(error.endswith("missing.png") and error.startswith("failed to load")
               for error in checks["errors"])
    assert "console.error: drawn wrong" in checks["errors"]
    assert any("undefined_function is not defined" in error for error in checks["errors"])
