"""A report page looked at in a real browser: Debian's headless Chromium driven by Playwright (the Python package;
its own browser download is never used). What a reader would notice is checked: every section and plot is on
screen and not empty, nothing is fetched from the network, the console stays clean, and the page reads at a phone's
width (390 px) and a desktop's (1400 px) without scrolling sideways. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = os.environ.get("SELFHOST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WIDTHS = (390, 1400)
# The flags this workplace's closed network needs (no background connections to Google), and root's --no-sandbox.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_CHECK = """() => {
  const seen = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const sections = [...document.querySelectorAll('section')].map(s => ({
    id: s.id, visible: seen(s), text: (s.innerText || '').trim().length,
  }));
  const plots = [...document.querySelectorAll('svg')].map(p => ({
    visible: seen(p), marks: p.querySelectorAll('rect,line,path,circle,polyline,text').length,
    right: p.getBoundingClientRect().right,
  }));
  return {sections, plots, scrollWidth: document.documentElement.scrollWidth, title: document.title};
}"""


@dataclass
class Look:
    width: int
    sections: list[dict]  # type: ignore[type-arg]
    plots: list[dict]  # type: ignore[type-arg]
    scroll_width: int
    screenshot: Path


@dataclass
class PageCheck:
    looks: list[Look] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # anything asked for that is not the page itself
    console_errors: list[str] = field(default_factory=list)


def look_at(html: Path, name: str) -> PageCheck:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise AssertionError(f"no Chromium at {CHROMIUM}: `make test-deps` installs Debian's (tools/chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    out = PageCheck()
    url = html.resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.on("console", lambda m: out.console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: out.console_errors.append(str(e)))

                def route(r):  # type: ignore[no-untyped-def]
                    if r.request.url != url:
                        out.requests.append(r.request.url)
                        return r.abort()
                    return r.continue_()

                page.route("**/*", route)
                page.goto(url, wait_until="load")
                got = page.evaluate(_CHECK)
                shot = ARTIFACTS / f"{name}-{width}px.png"
                page.screenshot(path=str(shot), full_page=True)
                out.looks.append(Look(width, got["sections"], got["plots"], got["scrollWidth"], shot))
                page.close()
        finally:
            browser.close()
    return out


def assert_readable(check: PageCheck, sections: set[str]) -> None:
    assert not check.requests, f"the page fetched {check.requests}"
    assert not check.console_errors, check.console_errors
    for look in check.looks:
        ids = {s["id"] for s in look.sections}
        assert sections <= ids, (look.width, sections - ids)
        for s in look.sections:
            assert s["visible"] and s["text"] > 0, (look.width, s)
        assert look.plots, "no plot on the page"
        for plot in look.plots:
            assert plot["visible"] and plot["marks"] > 3, (look.width, plot)
        # readable: nothing wider than the window (no sideways scrolling)
        assert look.scroll_width <= look.width, (look.width, look.scroll_width, look.screenshot)
        assert look.screenshot.stat().st_size > 5000
