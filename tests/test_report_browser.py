"""The run's one report (report/report.html) in a real headless browser: its tables and the worst-error rows are in
the rendered DOM, the inline filter applies the level and tag named in the URL hash, and a screenshot renders.

Needs a Chromium binary (Debian: `apt-get install chromium`; `make test` installs it when it can); skipped
without one. Nothing is loaded from the network: the page is one file with inline plots and script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from taosr1_plugins.evaluation.ablation import write_ablation
from taosr1_plugins.pipeline.stages import TRAINED_MODELS
from test_ablation_view import build_report_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _browser() -> str | None:
    named = os.environ.get("TAOSR1_CHROMIUM")
    if named:
        return shutil.which(named) or (named if os.access(named, os.X_OK) else None)
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


BROWSER = _browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium binary found (apt-get install chromium, or set "
                                "TAOSR1_CHROMIUM); the headless-browser check of the HTML report needs one")


def _chromium(tmp_path, url: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={profile}", *args, url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


class DomParser(HTMLParser):
    """Table classes/ids, and the worst-error rows with their data attributes and whether they are hidden."""

    def __init__(self):
        super().__init__()
        self.tables: list[str] = []
        self.errors: list[dict[str, str | None]] = []
        self.shown: str | None = None
        self._in_shown = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append(attrs.get("id") or attrs.get("class") or "")
        elif tag == "tr" and attrs.get("class") == "error":
            self.errors.append(attrs)
        elif attrs.get("id") == "errors-shown":
            self._in_shown = True

    def handle_data(self, data):
        if self._in_shown:
            self.shown, self._in_shown = data, False

    def visible(self) -> list[dict[str, str | None]]:
        return [row for row in self.errors if "hidden" not in row]


def _dom(tmp_path, page, fragment: str = "") -> DomParser:
    result = _chromium(tmp_path, page.as_uri() + fragment, "--dump-dom")
    parser = DomParser()
    parser.feed(result.stdout)
    return parser


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("browser")
    run, *_ = build_report_run(tmp_path)
    _, paths = write_ablation(run, TRAINED_MODELS)
    return paths["html"]


def test_rendered_dom_has_the_tables_and_every_error_row(page, tmp_path):
    dom = _dom(tmp_path, page)
    for table in ("ablation", "intervals", "differences", "stability", "per-level", "confusion", "slices", "metadata",
                  "versions", "errors"):
        assert table in dom.tables, (table, dom.tables)
    assert len(dom.errors) > 10 and len(dom.visible()) == len(dom.errors)  # no filter: every row shown
    assert dom.shown == str(len(dom.errors))


def test_the_url_hash_filters_the_errors_by_level_and_tag(page, tmp_path):
    everything = _dom(tmp_path, page).errors
    level = everything[-1]["data-level"]  # some gold level with errors, not the only one
    assert 0 < sum(row["data-level"] == level for row in everything) < len(everything)
    dom = _dom(tmp_path, page, f"#level={level}")
    shown = dom.visible()
    assert shown and all(row["data-level"] == level for row in shown)
    assert len(shown) == sum(row["data-level"] == level for row in everything) and dom.shown == str(len(shown))
    tagged = _dom(tmp_path, page, "#tag=negation").visible()
    assert tagged and all("negation" in row["data-tags"].split() for row in tagged) and len(tagged) < len(everything)
    untagged = _dom(tmp_path, page, "#tag=none").visible()
    assert untagged and all(row["data-tags"] == "" for row in untagged)
    both = _dom(tmp_path, page, f"#level={level}&tag=negation").visible()
    assert all(row["data-level"] == level and "negation" in row["data-tags"] for row in both)


def test_screenshot_renders(page, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.05  # text, tables and plots, not a blank page
