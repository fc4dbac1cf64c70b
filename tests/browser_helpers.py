"""A real browser for the tests: Debian's chromium (/usr/bin/chromium) driven by Playwright, closed to
every host but 127.0.0.1, and one ``visit`` that opens a page and records what a user (or an attacker)
would notice: console errors, uncaught exceptions, dialogs, failed loads, requests to other hosts,
scripts that ran, links, the Content-Security-Policy and a horizontal overflow on a phone.

Playwright here is only the Python package: it drives the system browser through ``executable_path``
(no ``playwright install``). test_browser.py skips when either is missing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags chromium calls home (component updates, safe browsing, ...).
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
               # and should anything still try, no host but 127.0.0.1 resolves
               "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 3}
DESKTOP = {"viewport": {"width": 1366, "height": 900}, "device_scale_factor": 1}
LOCAL_SCHEMES = {"file", "data", "about", "blob"}
LOOPBACK = {"127.0.0.1"}

# Set by the hostile feed text if any of it ever runs, and by the scripts the tests inject.
PWNED = "__pwned"
INJECTED = "__injected"

# Runs before any page script, outside the page's CSP (Playwright injects it through the DevTools
# protocol): it records every CSP violation the page reports.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""

# What a loaded page holds, read through Playwright's evaluate (which the page's CSP does not block).
INSPECT = r"""
(limit) => {
  const attrs = [];
  for (const el of document.querySelectorAll('*'))
    for (const a of el.attributes)
      if (a.name.toLowerCase().startsWith('on')) attrs.push(`<${el.tagName.toLowerCase()} ${a.name}="${a.value}">`);
  // What sticks out past ``limit`` px (the phone's width) when the page is held to that width: a
  // phone's browser would otherwise widen its layout viewport to fit the widest content, and every
  // block would stick out with it. Measured on a copy of the layout, then the page is left as it was.
  const overflowing = [];
  if (limit > 0 && document.body) {
    const html = document.documentElement, before = html.getAttribute('style');
    html.style.width = limit + 'px';
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > limit + 1) {
        const cls = typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\s+/).join('.') : '';
        overflowing.push(`<${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${cls}> right=${Math.round(r.right)}: ${
          (el.textContent || '').trim().slice(0, 80)}`);
      }
    }
    if (before === null) html.removeAttribute('style'); else html.setAttribute('style', before);
  }
  const csp = document.querySelector('meta[http-equiv="Content-Security-Policy" i]');
  const viewport = document.querySelector('meta[name="viewport" i]');
  return {
    title: document.title,
    text: document.body ? document.body.innerText : '',
    links: [...document.querySelectorAll('a[href]')].map(a => ({raw: a.getAttribute('href'), href: a.href})),
    alternates: [...document.querySelectorAll('link[href]')].map(l => ({rel: l.rel, href: l.href})),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    names: [...document.querySelectorAll('a[name]')].map(e => e.name),
    scripts: [...document.scripts].filter(s => !/json/i.test(s.type)).map(s => s.outerHTML.slice(0, 120)),
    handlers: attrs,
    metaCsp: csp ? csp.content : null,
    metaViewport: viewport ? viewport.content : null,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    overflowing: overflowing.slice(0, 8),
    pwned: window.__pwned ?? null,
    injected: window.__injected ?? null,
    violations: window.__cspViolations || [],
  };
}
"""


def artifacts_dir() -> Path:
    """Where screenshots go: browser/ under $AGGREGATOR_TEST_ARTIFACTS, else tests/artifacts/browser/ (gitignored).
    Each run overwrites its files (nothing is deleted: another run may be writing there too)."""
    root = Path(os.environ.get("AGGREGATOR_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
    path = root / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Visit:
    """What one page load showed."""

    url: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)
    console_all: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # subresources that did not load (network error or HTTP >= 400)
    outside: list[str] = field(default_factory=list)  # requests to another host (aborted)
    info: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """Everything a user would see as broken, or that shows feed text running as code."""
        found = [f"console error: {m}" for m in self.console_errors]
        found += [f"page error: {m}" for m in self.page_errors]
        found += [f"dialog opened: {m}" for m in self.dialogs]
        found += [f"failed to load: {m}" for m in self.failed]
        found += [f"request to another host: {m}" for m in self.outside]
        if self.info.get("pwned") is not None:
            found.append(f"hostile feed text ran: window.{PWNED} = {self.info['pwned']!r}")
        found += [f"inline event handler in the DOM: {h}" for h in self.info.get("handlers", [])]
        found += [f"script element in the DOM: {s}" for s in self.info.get("scripts", [])]
        found += [f"javascript: link: {link['raw']}" for link in self.info.get("links", [])
                  if link["raw"].strip().lower().startswith("javascript:")]
        return found

    def phone_layout(self, width: int) -> str | None:
        """Why the page does not fit a phone ``width`` CSS px wide, or None when it does. A page without a
        viewport meta is laid out 980 px wide and shrunk to unreadable text; content wider than the phone
        makes a phone's browser zoom the page out to fit it (so innerWidth grows past the device's width),
        or scroll sideways."""
        if not self.info["metaViewport"] or "device-width" not in self.info["metaViewport"]:
            return (f'no <meta name="viewport" content="width=device-width, initial-scale=1"> (it has {self.info["metaViewport"]!r}): '
                    f"a phone lays the page out {self.info['innerWidth']} px wide and shrinks it")
        if max(self.info["scrollWidth"], self.info["innerWidth"]) > width + 1:
            return (f"content {self.info['scrollWidth']} px wide on a {width} px phone (the browser zooms out or scrolls sideways); "
                    f"elements past the phone's right edge: {self.info['overflowing']}")
        return None


class Browser:
    """One chromium for a test module; contexts closed to every host but loopback."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.outside: list[str] = []  # requests to any other host (aborted; the test asserts none were attempted)

    def _route(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in LOCAL_SCHEMES or (parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOOPBACK):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort("blockedbyclient")

    @contextmanager
    def context(self, device: dict[str, Any]) -> Iterator[Any]:
        context = self.browser.new_context(**device, service_workers="block", java_script_enabled=True)
        context.route("**/*", self._route)
        context.add_init_script(WATCH_CSP)
        try:
            yield context
        finally:
            context.close()

    def visit(self, context: Any, url: str, *, screenshot: Path | None = None, then: Any = None) -> Visit:
        """Open ``url`` in a new page of ``context``, wait for it to load, and record what happened. ``then(page, visit)``
        runs after the page's own state is recorded (to inject things whose console errors are expected)."""
        result = Visit(url)
        outside_before = len(self.outside)
        page = context.new_page()
        page.on("console", lambda m: (result.console_all.append(f"{m.type}: {m.text}"),
                                      m.type == "error" and result.console_errors.append(m.text)))
        page.on("pageerror", lambda e: result.page_errors.append(str(e)))

        def dialog(d: Any) -> None:
            result.dialogs.append(f"{d.type}: {d.message}")
            d.dismiss()

        page.on("dialog", dialog)
        page.on("requestfailed", lambda r: result.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and r.request.resource_type != "document"
                and result.failed.append(f"{r.url} (HTTP {r.status})"))
        try:
            response = page.goto(url, wait_until="load", timeout=15_000)
            if response is not None:
                result.status = response.status
                result.headers = {k.lower(): v for k, v in response.all_headers().items()}
            result.info = page.evaluate(INSPECT, page.viewport_size["width"] if page.viewport_size else 0)
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            if then is not None:
                then(page, result)
        finally:
            page.close()
            result.outside = self.outside[outside_before:]
        return result


def script_policy(csp: str | None) -> dict[str, list[str]]:
    """The directives of a CSP that govern scripts (script-src, script-src-elem, script-src-attr, or
    default-src when script-src is absent), each with its sources."""
    directives: dict[str, list[str]] = {}
    for part in (csp or "").split(";"):
        tokens = part.split()
        if tokens:
            directives.setdefault(tokens[0].lower(), [t.lower() for t in tokens[1:]])
    governing = {name: sources for name, sources in directives.items() if name in ("script-src", "script-src-elem", "script-src-attr")}
    if "script-src" not in governing and "default-src" in directives:
        governing["default-src"] = directives["default-src"]
    return governing


def forbids_scripts(csp: str | None) -> bool:
    """True when the policy lets no script run: every directive governing scripts is exactly 'none'."""
    policy = script_policy(csp)
    return bool(policy) and ("script-src" in policy or "default-src" in policy) and all(s == ["'none'"] for s in policy.values())


# Inserted at the end of a digest's body (where escaped feed text lives): a copy of the page as it
# would be if feed text ever reached it unescaped. The CSP must stop all three.
INJECTION = (f"<script>window.{INJECTED} = 'inline script'</script>"
             f"<img src=\"data:,\" onerror=\"window.{INJECTED} = 'img onerror'\">"
             f"<svg onload=\"window.{INJECTED} = 'svg onload'\"></svg>")


def inject(html: str) -> str:
    body_end = re.search(r"</body\s*>", html, re.IGNORECASE)
    at = body_end.start() if body_end else len(html)
    return html[:at] + INJECTION + html[at:]
