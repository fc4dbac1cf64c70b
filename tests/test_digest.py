"""render_digest and write_atomically with hand-built stories: order, escaping of hostile feed text, CSP, files."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import lxml.html
import pytest
from markdown_it import MarkdownIt

from aggregator.digest import (
    EXCERPT_CHARS,
    DayMark,
    day_mark,
    digest_days,
    excerpt,
    render_digest,
    safe_url,
    write_atomically,
    write_day,
)
from aggregator.models import Story, Variant

DAY = date(2024, 3, 6)
T0 = datetime(2024, 3, 5, 22, 0, tzinfo=timezone.utc)
GENERATED = datetime(2024, 3, 6, 6, 0, tzinfo=timezone.utc)


def variant(article_id: int, story_id: int, kind: str = "canonical", *, source: str = "Harbour Gazette", title: str = "A title",
            url: str | None = "https://news.example.org/a", minutes: int = 0, text: str = "Some text.", similarity: float = 1.0,
            summary_html: str = "") -> Variant:
    return Variant(
        article_id=article_id, story_id=story_id, kind=kind, similarity=similarity, source=source,  # type: ignore[arg-type]
        title=title, url=url, published_at=T0 + timedelta(minutes=minutes), first_seen_at=T0 + timedelta(minutes=minutes + 1), text=text,
        summary_html=summary_html,
    )


def story(story_id: int, title: str, variants: list[Variant]) -> Story:
    canonical = next(v for v in variants if v.kind == "canonical")
    first = min(variants, key=lambda v: v.published_at)
    return Story(
        id=story_id, title=title, canonical_article_id=canonical.article_id, first_reported_at=first.published_at,
        first_source=first.source, updated_at=max(v.published_at for v in variants), variants=tuple(variants),
    )


def render(stories: list[Story], tz: str = "UTC") -> tuple[str, str]:
    return render_digest(DAY, stories, tz, GENERATED)


# -- content and order ------------------------------------------------------------------------------


def three_stories() -> list[Story]:
    flood = story(10, "Storm floods Port Elwyn", [
        variant(1, 10, source="Harbour Gazette", title="Storm floods harbour town", url="https://gazette.example.org/flood",
                text="Heavy rain flooded the lower streets. " * 30),
        variant(2, 10, "copy", source="Wire Service", title="Ferries halted", url="https://wire.example.com/ferries", minutes=20, similarity=0.91),
        variant(3, 10, "report", source="Coast Radio", title="Forty evacuated", url="https://radio.example.net/evac", minutes=50, similarity=0.33),
    ])
    chess = story(20, "Chess prodigy wins title", [
        variant(4, 20, source="Northern Echo", title="Chess prodigy, 12, wins", url="https://echo.example.org/chess", minutes=-120),
        variant(5, 20, "report", source="Sports Daily", title="Youngest champion", url="https://sports.example.com/chess", minutes=-60, similarity=0.4),
    ])
    budget = story(30, "Council passes budget", [variant(6, 30, source="Town Hall News", title="Budget passed", url="https://hall.example.org/b")])
    return [flood, chess, budget]


def test_ranking_order_is_preserved() -> None:
    stories = three_stories()
    for order in (stories, [stories[2], stories[0], stories[1]]):
        markdown, html = render(order)
        doc = lxml.html.document_fromstring(html)
        headings = [h.text_content() for h in doc.iter("h2")]
        assert headings == [f"{i}. {s.title}" for i, s in enumerate(order, start=1)]
        positions = [markdown.index(f"## {i}. ") for i in range(1, len(order) + 1)]
        assert positions == sorted(positions)
        for i, s in enumerate(order, start=1):
            assert f"## {i}. {s.title}" in markdown


def test_story_details_are_shown() -> None:
    markdown, html = render(three_stories(), tz="Europe/Paris")
    doc = lxml.html.document_fromstring(html)
    flood = doc.get_element_by_id("story-10")
    assert "3 outlets (1 copy of Harbour Gazette)" in flood.text_content()
    assert "first: Harbour Gazette at 2024-03-05 23:00" in flood.text_content()  # in the digest's time zone
    links = [(a.text_content(), a.get("href")) for a in flood.iter("a")]
    assert links == [
        ("Storm floods harbour town", "https://gazette.example.org/flood"),
        ("Ferries halted", "https://wire.example.com/ferries"),
        ("Forty evacuated", "https://radio.example.net/evac"),
    ]
    assert "similarity 0.91" in flood.text_content()
    assert "1 outlet ·" in doc.get_element_by_id("story-30").text_content()
    assert "Times in Europe/Paris" in markdown
    assert "[Ferries halted](<https://wire.example.com/ferries>)" in markdown


def test_long_canonical_text_is_cut_to_an_excerpt() -> None:
    _, html = render(three_stories())
    para = lxml.html.document_fromstring(html).get_element_by_id("story-10").find(".//div[@class='lead']/p")
    assert para is not None
    assert para.text_content().endswith("…")
    assert len(para.text_content()) < 400


def test_empty_digest() -> None:
    markdown, html = render([])
    assert "No stories for this day." in markdown
    assert "No stories for this day." in html
    assert "0 stories" in html


# -- hostile feed text --------------------------------------------------------------------------------

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</title><script>alert(document.domain)</script>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<iframe src=//evil.example></iframe>",
    "{{ 7*7 }}{% raw %}",  # template syntax must stay text
    "[click](javascript:alert(1))",
    "<style>body{display:none}</style>",
]

BAD_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    'https://ok.example.org/"onmouseover="alert(1)',
    "https://ok.example.org/<script>",
    "https://ok.example.org/a b",
    "file:///etc/passwd",
    "",
]


def hostile_story(payload: str, url: str | None) -> Story:
    return story(66, payload, [
        variant(7, 66, source=payload, title=payload, url=url, text=payload + " " + payload),
        variant(8, 66, "report", source="Plain Source", title="Plain " + payload, url=url, minutes=5, similarity=0.3),
    ])


OWN_LINK = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|index)\.html$")  # the page's links to the other days and the index


def in_day_nav(el: lxml.html.HtmlElement) -> bool:
    return any(a.tag == "nav" and a.get("class") == "days" for a in el.iterancestors())


def content_links(doc: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """The page's links but those between days: the ones feed URLs could have made."""
    return [a for a in doc.iter("a") if not in_day_nav(a)]


def assert_inert_html(html: str) -> None:
    doc = lxml.html.document_fromstring(html)
    assert not list(doc.iter("script", "img", "svg", "iframe", "object", "embed", "form", "base")), "active element injected"
    assert len(list(doc.iter("style"))) == 1  # only the page's own
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), f"event handler attribute {name}={value!r}"
            if name in ("href", "src", "action"):
                own = name == "href" and in_day_nav(el) and OWN_LINK.match(value)
                assert own or value.lower().startswith(("http://", "https://")), f"{name}={value!r}"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_text_are_escaped_in_html(payload: str) -> None:
    _, html = render([hostile_story(payload, "https://ok.example.org/x")])
    if any(c in payload for c in "<>\"'"):
        assert payload not in html
    assert_inert_html(html)
    article = lxml.html.document_fromstring(html).get_element_by_id("story-66")
    assert article.find("h2").text_content() == f"1. {payload}"  # shown, as text, verbatim
    assert "49" not in article.text_content()  # no template evaluation of feed text


@pytest.mark.parametrize("url", BAD_URLS)
def test_unsafe_urls_produce_no_link(url: str) -> None:
    markdown, html = render([hostile_story("Headline", url)])
    assert_inert_html(html)
    doc = lxml.html.document_fromstring(html)
    assert content_links(doc) == []
    assert "](<" not in markdown
    assert safe_url(url) is None


@pytest.mark.parametrize("url", ["https://ok.example.org/a?b=1&c=2", "HTTP://OK.EXAMPLE.ORG/X", "http://ok.example.org/(x)"])
def test_safe_urls_are_linked_and_attribute_escaped(url: str) -> None:
    _, html = render([hostile_story("Headline", url)])
    hrefs = [a.get("href") for a in content_links(lxml.html.document_fromstring(html))]
    assert hrefs == [url, url]
    if "&" in url:
        assert "&amp;" in html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_renders_inert(payload: str) -> None:
    """Viewed through a CommonMark renderer that allows raw HTML, the Markdown digest stays inert."""
    markdown, _ = render([hostile_story(payload, "javascript:alert(1)")])
    rendered = MarkdownIt("commonmark").render(markdown)
    assert_inert_html(f"<html><head><style></style></head><body>{rendered}</body></html>")
    assert "javascript:" not in "".join(a.get("href", "") for a in lxml.html.fragment_fromstring(rendered, create_parent="div").iter("a"))


EVERYDAY = "Syria - regime strike (12 killed) in Idlib, 3.5% of homes hit! #news"
BLOCK_STARTS = ["# Not a heading", "1986. A year of change", "12) Twelve points", "- Not a list", "+ Nor this", "> Not a quote", "=====",
                "Vote now #", "*emphasis* and _this_ and `code` and [a](link) and <b>bold</b>"]


def test_markdown_leaves_everyday_punctuation_alone() -> None:
    """Hyphens, parentheses, dots, hashes and exclamation marks inside a sentence are not markup:
    the digest's Markdown carries them without backslashes."""
    markdown, _ = render([hostile_story(EVERYDAY, "https://ok.example.org/x")])
    assert f"## 1. {EVERYDAY}" in markdown and "\\" not in markdown


@pytest.mark.parametrize("text", BLOCK_STARTS)
def test_markdown_text_stays_text(text: str) -> None:
    """Text that would start a heading, a list, a quote or a rule, or that holds inline markup, is
    rendered by CommonMark as the same words in the same paragraph or heading."""
    markdown, _ = render([hostile_story(text, "https://ok.example.org/x")])
    rendered = lxml.html.fragment_fromstring(MarkdownIt("commonmark").render(markdown), create_parent="div")
    assert [h.text_content() for h in rendered.iter("h2")] == [f"1. {text}"]
    assert [s.text_content() for s in rendered.iter("strong")] == [text]  # the first source
    assert [a.text_content() for a in rendered.iter("a")] == [text, f"Plain {text}"]
    assert any(p.text_content().startswith(text) for p in rendered.iter("p"))  # the excerpt, verbatim
    # only the digest's own markup: one title, one list of two variants, two italic lines
    counts = {tag: len(list(rendered.iter(tag))) for tag in ("h1", "h3", "blockquote", "ol", "ul", "li", "hr", "em", "code", "b")}
    assert counts == {"h1": 1, "h3": 0, "blockquote": 0, "ol": 0, "ul": 1, "li": 2, "hr": 0, "em": 2, "code": 0, "b": 0}, counts


# -- feed HTML: the canonical's own summary, sanitized with nh3 -------------------------------------

SUMMARY_PAYLOADS = PAYLOADS + [
    '<p>Rain<img src=x onerror="alert(1)"></p>',
    '<a href="javascript:alert(1)">x</a><a href="data:text/html,<script>alert(1)</script>">y</a>',
    '<a href=" JaVaScRiPt:alert(1)">x</a><a href="/relative/path">r</a><a href="//evil.example/x">p</a>',
    '<p onclick="alert(1)" style="background:url(javascript:alert(1))">styled</p>',
    '<form action="https://evil.example"><input name=q><button>go</button></form>',
    '<object data="x.swf"></object><embed src="x.swf"><base href="https://evil.example/">',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<!--<img src=x onerror=alert(1)>-->',
    '<b>unclosed <a href="https://ok.example.org/a',
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<link rel=stylesheet href="https://evil.example/x.css">',
]


def summary_story(summary_html: str, text: str = "The full text of the report.") -> Story:
    return story(70, "Headline", [variant(9, 70, summary_html=summary_html, text=text)])


def lead_of(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html).get_element_by_id("story-70").find(".//div[@class='lead']")


@pytest.mark.parametrize("payload", SUMMARY_PAYLOADS)
def test_feed_html_summaries_are_sanitized(payload: str) -> None:
    _, html = render([summary_story(payload)])
    assert_inert_html(html)
    doc = lxml.html.document_fromstring(html)
    assert len(list(doc.iter("meta"))) == 5, "no meta element beyond the page's own (charset, CSP, viewport, color scheme, referrer)"
    assert not list(doc.iter("link", "input", "button", "textarea", "math"))
    assert "alert(" not in "".join(el.get(a, "") for el in doc.iter() if isinstance(el.tag, str) for a in el.attrib)


def test_summary_formatting_and_http_links_survive() -> None:
    summary = ('<p>Rain <strong>flooded</strong> the <em>lower</em> town; '
               '<a href="https://gazette.example.org/flood" target="_blank">live updates</a>.</p>')
    _, html = render([summary_story(summary)])
    lead = lead_of(html)
    assert lead.find(".//strong").text == "flooded" and lead.find(".//em").text == "lower"
    link = lead.find(".//a")
    assert link.get("href") == "https://gazette.example.org/flood"
    assert link.get("rel") == "noopener noreferrer nofollow" and link.get("target") is None
    assert "The full text" not in lead.text_content()  # the summary leads, not the text


def test_right_to_left_text_keeps_its_direction_and_cannot_reverse_its_neighbours() -> None:
    arabic = "غارة على إدلب تقتل 12 شخصا"
    spoof = "Invoice \u202egnp.exe"  # U+202E (right-to-left override) would show "exe.png"
    stories = [story(40, arabic, [variant(7, 40, title=spoof, source="\u2067Wire\u2069", text=arabic + " " + "نص " * 50)])]
    markdown, html = render(stories)
    for out in (markdown, html):
        assert "\u202e" not in out and "\u2067" not in out and "\u2069" not in out
        assert arabic in out and "Invoice gnp.exe" in out
    doc = lxml.html.document_fromstring(html)
    h2 = doc.get_element_by_id("story-40").find(".//h2")
    assert h2 is not None and h2.get("dir") == "auto" and h2.find("bdi").text == arabic


def test_excerpts_of_text_without_spaces_keep_their_length() -> None:
    chinese = "新华社北京 " + "国务院新闻办公室今天举行发布会介绍经济运行情况并回答记者提问。" * 30
    cut = excerpt(chinese)
    assert EXCERPT_CHARS // 2 <= len(cut) <= EXCERPT_CHARS + 2 and cut.endswith("…")
    english = excerpt("word " * 200)
    assert english.endswith("word …") and len(english) <= EXCERPT_CHARS + 2  # still cut between words


def test_long_summary_falls_back_to_a_text_excerpt() -> None:
    _, html = render([summary_story("<p>" + "Word " * 400 + "</p>", text="Plain text body. " * 50)])
    lead = lead_of(html)
    assert lead.text_content().startswith("Plain text body.") and lead.text_content().endswith("…")


def test_empty_summary_falls_back_to_the_text() -> None:
    _, html = render([summary_story("<p> <img src=x> </p>", text="What happened, in words.")])
    assert lead_of(html).text_content() == "What happened, in words."


# -- Content-Security-Policy ------------------------------------------------------------------------


def csp_directives(html: str) -> dict[str, list[str]]:
    doc = lxml.html.document_fromstring(html)
    metas = [m for m in doc.iter("meta") if (m.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(metas) == 1, "exactly one CSP meta element"
    assert metas[0].getparent().tag == "head"
    directives: dict[str, list[str]] = {}
    for part in metas[0].get("content", "").split(";"):
        if part.strip():
            name, *values = part.split()
            directives[name.lower()] = values
    return directives


def test_csp_forbids_scripts() -> None:
    _, html = render(three_stories())
    csp = csp_directives(html)
    assert csp["default-src"] == ["'none'"]
    script = csp.get("script-src", csp["default-src"])  # script-src falls back to default-src
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert script == ["'none'"]
    assert all("'unsafe-inline'" not in csp[d] for d in csp if d.startswith("script"))
    assert csp.get("base-uri") == ["'none'"]
    assert csp.get("form-action") == ["'none'"]
    assert "<script" not in html.lower()


def test_csp_meta_comes_before_any_content() -> None:
    _, html = render(three_stories())
    assert html.index("Content-Security-Policy") < html.index("<title>") < html.index("<body>")


def test_referrer_is_not_leaked_to_publishers() -> None:
    _, html = render(three_stories())
    doc = lxml.html.document_fromstring(html)
    assert any(m.get("name") == "referrer" and m.get("content") == "no-referrer" for m in doc.iter("meta"))
    for a in content_links(doc):
        assert {"noopener", "noreferrer"} <= set((a.get("rel") or "").split())


# -- write_atomically ---------------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


def test_write_creates_directories_and_file(tmp_path: Path) -> None:
    target = tmp_path / "digests" / "2024" / "2024-03-06.html"
    write_atomically(target, "<p>héllo</p>\n")
    assert target.read_text(encoding="utf-8") == "<p>héllo</p>\n"
    assert leftovers(target.parent) == []


def test_write_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "digest.md"
    write_atomically(target, "x" * 10_000)
    write_atomically(target, "short")
    assert target.read_text(encoding="utf-8") == "short"
    assert leftovers(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["digest.md"]


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "digest.html"
    write_atomically(target, "old digest")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(target, "new digest with a lone surrogate \ud800")
    assert target.read_text(encoding="utf-8") == "old digest"
    assert leftovers(tmp_path) == []


def test_readers_see_old_or_new_never_half(tmp_path: Path) -> None:
    target = tmp_path / "digest.html"
    versions = {"A" * 200_000, "B" * 150_000}
    write_atomically(target, "A" * 200_000)
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(target.read_text(encoding="utf-8"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(30):
            write_atomically(target, ("B" * 150_000) if i % 2 == 0 else ("A" * 200_000))
    finally:
        stop.set()
        thread.join()
    assert seen <= versions, f"a reader saw a partial file of {sorted(len(s) for s in seen - versions)} chars"
    assert leftovers(tmp_path) == []


def test_render_and_write_round_trip(tmp_path: Path) -> None:
    markdown, html = render(three_stories())
    write_atomically(tmp_path / "d.md", markdown)
    write_atomically(tmp_path / "d.html", html)
    assert (tmp_path / "d.html").read_text(encoding="utf-8") == html
    assert (tmp_path / "d.md").read_bytes().decode("utf-8") == markdown


def test_the_daily_digest_job_also_rewrites_the_day_before_yesterday(make_config) -> None:
    """Where the digest time falls in a daylight-saving gap, the cron trigger skips a day; the
    next run still writes the day that had ended meanwhile."""
    import asyncio

    from aggregator.factory import make_aggregator
    from aggregator.schedule import Daemon

    now = datetime(2026, 9, 7, 0, 30, tzinfo=timezone.utc)
    agg = make_aggregator(make_config([]), clock=lambda: now)
    try:
        asyncio.run(Daemon(agg)._digest())
        written = sorted(p.name for p in agg.config.digest_dir.glob("*.md"))
        beside = {p.name for p in agg.config.digest_dir.iterdir()}
    finally:
        agg.close()
    assert written == ["2026-09-05.md", "2026-09-06.md", "2026-09-07.md"]
    assert {"index.html", "stories.atom", "stories.json"} <= beside  # and the index and the story feeds


# -- the day's marks: new stories, and stories that continue from an earlier day -------------------

ON_DAY = datetime(2024, 3, 6, 9, 0, tzinfo=timezone.utc)  # DAY's morning


def dated(article_id: int, story_id: int, at: datetime, kind: str = "canonical", **kw: object) -> Variant:
    v = variant(article_id, story_id, kind, **kw)  # type: ignore[arg-type]
    return replace(v, published_at=at, first_seen_at=at + timedelta(minutes=1))


def continuing_and_new() -> list[Story]:
    yesterday = ON_DAY - timedelta(days=1)
    continuing = story(50, "Bridge inquiry widens", [
        dated(11, 50, yesterday, source="Harbour Gazette", title="Inquiry opens", url="https://gazette.example.org/inquiry"),
        dated(12, 50, yesterday + timedelta(hours=2), "report", source="Coast Radio", title="Engineer questioned",
              url="https://radio.example.net/q", similarity=0.4),
        dated(13, 50, ON_DAY, "report", source="Wire Service", title="Inquiry widens to council", url="https://wire.example.com/w",
              similarity=0.5),
    ])
    fresh = story(60, "Lighthouse relit", [dated(14, 60, ON_DAY + timedelta(hours=1), source="Northern Echo", title="Relit",
                                                 url="https://echo.example.org/l")])
    return [continuing, fresh]


def test_stories_are_marked_new_or_updated_in_html() -> None:
    _, html = render(continuing_and_new())
    doc = lxml.html.document_fromstring(html)
    fresh, continuing = doc.get_element_by_id("story-60"), doc.get_element_by_id("story-50")
    assert [m.text for m in fresh.find_class("mark")] == ["new"] and fresh.get("class") == "new"
    assert continuing.get("class") == "updated"
    meta = continuing.find(".//p[@class='meta']")
    assert [m.text for m in meta.find_class("mark")] == ["updated"]
    assert "continues from 2024-03-05, 1 new article this day" in meta.text_content()
    items = continuing.findall(".//li")
    assert [li.get("class") for li in items] == [None, None, "fresh"]  # only the variant published this day
    assert [[m.text for m in li.find_class("mark")] for li in items] == [[], [], ["new"]]
    assert [a.text_content() for a in content_links(doc) if a.getparent() is items[2]] == ["Inquiry widens to council"]


def test_stories_are_marked_new_or_updated_in_markdown() -> None:
    markdown, _ = render(continuing_and_new())
    continuing, fresh = markdown.split("## 1. ")[1].split("## 2. ")
    assert "· updated: continues from 2024-03-05, 1 new article this day" in continuing
    lines = [line for line in continuing.splitlines() if line.startswith("- ")]
    assert [", new this day)" in line for line in lines] == [False, False, True]
    assert "· new story" in fresh and "new this day" not in fresh
    rendered = MarkdownIt("commonmark").render(markdown)
    assert "updated: continues from 2024-03-05" in lxml.html.fragment_fromstring(rendered, create_parent="div").text_content()


def test_marks_follow_the_digest_time_zone() -> None:
    """00:30 in Paris is the day before in UTC: a story first reported then is new on the Paris day."""
    night = datetime(2024, 3, 5, 23, 30, tzinfo=timezone.utc)
    s = story(70, "Night ferry delayed", [dated(21, 70, night, source="Harbour Gazette")])
    paris, _ = render_digest(DAY, [s], "Europe/Paris", GENERATED)
    utc, _ = render_digest(DAY, [s], "UTC", GENERATED)
    assert "· new story" in paris
    assert "· updated: continues from 2024-03-05" in utc and "new article" not in utc  # (no variant on the UTC day)


def test_day_mark_is_pure() -> None:
    from zoneinfo import ZoneInfo

    continuing, fresh = continuing_and_new()
    start, end = datetime(2024, 3, 6, tzinfo=timezone.utc), datetime(2024, 3, 7, tzinfo=timezone.utc)
    assert day_mark(continuing, start, end, ZoneInfo("UTC")) == DayMark("updated", date(2024, 3, 5), frozenset({13}))
    assert day_mark(fresh, start, end, ZoneInfo("UTC")) == DayMark("new", DAY, frozenset({14}))


# -- phones, dark scheme, CSP --------------------------------------------------------------------------


def test_pages_fit_phones_and_follow_the_dark_scheme(tmp_path: Path) -> None:
    files = write_day(tmp_path, DAY, continuing_and_new(), "UTC", GENERATED)
    for path in (files.html, files.index):
        assert path is not None
        html = path.read_text(encoding="utf-8")
        doc = lxml.html.document_fromstring(html)
        metas = {m.get("name"): m.get("content") for m in doc.iter("meta") if m.get("name")}
        assert metas["viewport"] == "width=device-width, initial-scale=1"
        assert metas["color-scheme"] == "light dark"
        (style,) = doc.iter("style")
        assert "@media (prefers-color-scheme: dark)" in style.text and "color-scheme: light dark" in style.text
        csp = csp_directives(html)
        assert csp["default-src"] == ["'none'"] and "script-src" not in csp and csp["style-src"] == ["'unsafe-inline'"]
        assert "<script" not in html.lower()


# -- links between days, and the index ----------------------------------------------------------------


def nav_links(path: Path) -> list[list[tuple[str | None, str | None]]]:
    """Each nav's (rel, href) links, from the page as written."""
    doc = lxml.html.document_fromstring(path.read_text(encoding="utf-8"))
    return [[(a.get("rel"), a.get("href")) for a in nav.iter("a")] for nav in doc.iter("nav")]


def test_days_link_to_their_neighbours_and_the_index(tmp_path: Path) -> None:
    d4, d5, d6, d9 = (date(2024, 3, d) for d in (4, 5, 6, 9))
    write_day(tmp_path, d4, three_stories(), "UTC", GENERATED)
    assert nav_links(tmp_path / "2024-03-04.html") == [[(None, "index.html")]] * 2  # top and bottom
    write_day(tmp_path, d6, three_stories()[:1], "UTC", GENERATED)
    write_day(tmp_path, d9, [], "UTC", GENERATED)
    write_day(tmp_path, d5, three_stories()[:2], "UTC", GENERATED)  # between two days that exist: both relinked
    expected = {
        d4: [(None, "index.html"), ("next", "2024-03-05.html")],
        d5: [("prev", "2024-03-04.html"), (None, "index.html"), ("next", "2024-03-06.html")],
        d6: [("prev", "2024-03-05.html"), (None, "index.html"), ("next", "2024-03-09.html")],
        d9: [("prev", "2024-03-06.html"), (None, "index.html")],
    }
    for day, links in expected.items():
        assert nav_links(tmp_path / f"{day}.html") == [links, links], day
        for _, href in links:
            assert (tmp_path / str(href)).exists()
    assert digest_days(tmp_path) == [d4, d5, d6, d9]
    assert leftovers(tmp_path) == []


def test_a_page_without_links_is_left_as_it_was(tmp_path: Path) -> None:
    """A day written by an older version (no links) is not rewritten when a neighbour arrives."""
    old = tmp_path / "2024-03-05.html"
    old.write_text("<!DOCTYPE html><html><body><p>an old digest</p></body></html>\n", encoding="utf-8")
    write_day(tmp_path, DAY, three_stories(), "UTC", GENERATED)
    assert old.read_text(encoding="utf-8") == "<!DOCTYPE html><html><body><p>an old digest</p></body></html>\n"
    assert nav_links(tmp_path / "2024-03-06.html")[0] == [("prev", "2024-03-05.html"), (None, "index.html")]


def index_rows(directory: Path) -> list[tuple[str, str]]:
    doc = lxml.html.document_fromstring((directory / "index.html").read_text(encoding="utf-8"))
    (days,) = doc.find_class("days")
    return [(li.find("a").get("href"), " ".join(li.text_content().split())) for li in days.iter("li")]


def test_the_index_lists_every_day_newest_first_with_its_count(tmp_path: Path) -> None:
    write_day(tmp_path, date(2024, 3, 4), three_stories(), "UTC", GENERATED)
    assert index_rows(tmp_path) == [("2024-03-04.html", "Monday 2024-03-04 — 3 stories · Markdown")]
    write_day(tmp_path, DAY, three_stories()[:1], "UTC", GENERATED)
    (tmp_path / "2024-03-02.html").write_text("<html><body>older, without a count</body></html>", encoding="utf-8")
    (tmp_path / "2024-02-30.html").write_text("not a day", encoding="utf-8")
    (tmp_path / "notes.html").write_text("not a day", encoding="utf-8")
    files = write_day(tmp_path, date(2024, 3, 5), [], "UTC", GENERATED)  # every write rewrites the index
    assert files.index == tmp_path / "index.html"
    assert index_rows(tmp_path) == [
        ("2024-03-06.html", "Wednesday 2024-03-06 — 1 story · Markdown"),
        ("2024-03-05.html", "Tuesday 2024-03-05 — 0 stories · Markdown"),
        ("2024-03-04.html", "Monday 2024-03-04 — 3 stories · Markdown"),
        ("2024-03-02.html", "Saturday 2024-03-02"),
    ]
    doc = lxml.html.document_fromstring((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert not list(doc.iter("link"))  # no story feeds in this directory: none announced


def test_the_index_announces_the_story_feeds_when_they_are_there(tmp_path: Path) -> None:
    (tmp_path / "stories.atom").write_text("<feed/>", encoding="utf-8")
    (tmp_path / "stories.json").write_text("{}", encoding="utf-8")
    write_day(tmp_path, DAY, [], "UTC", GENERATED)
    doc = lxml.html.document_fromstring((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert [(link.get("type"), link.get("href")) for link in doc.iter("link")] == [
        ("application/atom+xml", "stories.atom"), ("application/feed+json", "stories.json")]
    assert ["stories.atom", "stories.json"] == [a.get("href") for a in doc.iter("a") if a.get("href", "").startswith("stories.")]


def test_hostile_text_stays_out_of_the_index_and_the_links(tmp_path: Path) -> None:
    write_day(tmp_path, DAY, [hostile_story('</nav><nav class="days"><a href="javascript:alert(1)">x</a></nav>', "javascript:x")],
              "UTC", GENERATED)
    write_day(tmp_path, date(2024, 3, 7), [], "UTC", GENERATED)  # relinks DAY's page
    html = (tmp_path / "2024-03-06.html").read_text(encoding="utf-8")
    assert_inert_html(html)
    assert nav_links(tmp_path / "2024-03-06.html") == [[(None, "index.html"), ("next", "2024-03-07.html")]] * 2
    index = lxml.html.document_fromstring((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert [a.get("href") for a in index.iter("a")] == ["2024-03-07.html", "2024-03-07.md", "2024-03-06.html", "2024-03-06.md"]
    assert not list(index.iter("script", "img", "svg", "iframe", "object", "embed", "form", "base"))


# -- copies of whom, figures that differ, the last update ---------------------------------------------

STRIKE = ("A missile strike killed at least 12 people in a village in Idlib province early on Tuesday, the Syrian Observatory "
          "for Human Rights said. Rescuers pulled bodies from the rubble of two houses.")


def strike_story(*, later_toll: int | None) -> Story:
    later = STRIKE.replace("killed at least 12 people", f"killed {later_toll} people") if later_toll else STRIKE
    return story(90, "Strike in Idlib", [
        variant(1, 90, source="Global Wire", title="Strike kills 12", url="https://wire.example.com/s", text=STRIKE),
        variant(2, 90, "copy", source="Harbour Gazette", title="Idlib strike", url="https://gazette.example.org/s", minutes=30, text=STRIKE,
                similarity=0.95),
        variant(3, 90, "report", source="Coast Radio", title="Toll rises", url="https://radio.example.net/s", minutes=150, text=later,
                similarity=0.6),
    ])


def test_copies_say_whose_text_they_carry() -> None:
    markdown, html = render([strike_story(later_toll=None)])
    block = lxml.html.document_fromstring(html).get_element_by_id("story-90").text_content()
    assert "3 outlets (1 copy of Global Wire)" in block
    assert "Harbour Gazette (2024-03-05 22:30, copy of Global Wire, similarity 0.95)" in block
    assert "Coast Radio (2024-03-06 00:30, report, similarity 0.60)" in block  # reports are no one's copy
    assert "*3 outlets (1 copy of Global Wire)*" in markdown
    assert "- Harbour Gazette (2024-03-05 22:30, copy of Global Wire, similarity 0.95)" in markdown


def test_a_disagreeing_figure_appears_with_its_newest_value() -> None:
    markdown, html = render([strike_story(later_toll=15)])
    facts = lxml.html.document_fromstring(html).get_element_by_id("story-90").find_class("facts")
    assert [p.text_content() for p in facts] == [
        "Figures differ: killed: 12 (Syrian Observatory for Human Rights, 2 outlets) · 15 (Syrian Observatory for Human Rights, "
        "1 outlet); newest: 15"]
    assert "\nFigures differ: killed: 12 (Syrian Observatory for Human Rights, 2 outlets) · 15 (" in markdown
    assert "newest: 15\n" in markdown


def test_agreed_figures_are_shown_compactly_and_no_figures_no_line() -> None:
    markdown, html = render([strike_story(later_toll=None), *three_stories()])
    doc = lxml.html.document_fromstring(html)
    assert [p.text_content() for p in doc.get_element_by_id("story-90").find_class("facts")] == ["Figures: killed 12"]
    assert doc.get_element_by_id("story-10").find_class("facts") == []  # no figures in its text: no line
    assert markdown.count("Figures") == 1 and "\nFigures: killed 12\n" in markdown


def test_the_last_update_is_shown_beside_the_first_report() -> None:
    s = strike_story(later_toll=None)
    markdown, html = render([s], tz="Europe/Paris")  # first 23:00 on the 5th, last update 01:30 on the 6th (Paris)
    block = lxml.html.document_fromstring(html).get_element_by_id("story-90").text_content()
    assert "first: Global Wire at 2024-03-05 23:00 · last update 2024-03-06 01:30" in block
    assert "first: **Global Wire** at 2024-03-05 23:00 · last update 2024-03-06 01:30" in markdown
    same_day = replace(s, updated_at=T0 + timedelta(minutes=40))  # the same local day as the first report: the time alone
    _, html = render([same_day], tz="Europe/Paris")
    assert "· last update 23:40 ·" in lxml.html.document_fromstring(html).get_element_by_id("story-90").text_content()
