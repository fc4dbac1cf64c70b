"""URL normalisation (article identity) and HTML → text (what dedup and the digest see)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.text import clean_text, html_to_text
from aggregator.urls import host_of, normalize_url

# -- normalize_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # tracking parameters go, real ones stay in their order
        ("https://news.example.com/a?utm_source=rss&id=7&utm_medium=feed", "https://news.example.com/a?id=7"),
        ("https://news.example.com/a?UTM_Campaign=spring&page=2", "https://news.example.com/a?page=2"),
        ("https://news.example.com/a?fbclid=IwAR0xyz", "https://news.example.com/a"),
        ("https://news.example.com/a?gclid=1&b=2&a=1&ref=tw", "https://news.example.com/a?b=2&a=1"),
        # fragments never identify an article
        ("https://news.example.com/a#comments", "https://news.example.com/a"),
        ("https://news.example.com/a?x=1#top", "https://news.example.com/a?x=1"),
        # default ports go, other ports stay
        ("http://news.example.com:80/a", "http://news.example.com/a"),
        ("https://news.example.com:443/a", "https://news.example.com/a"),
        ("https://news.example.com:8443/a", "https://news.example.com:8443/a"),
        ("http://news.example.com:8080/a", "http://news.example.com:8080/a"),
        ("http://news.example.com:443/a", "http://news.example.com:443/a"),  # 443 is not http's default
        # scheme and host are case-insensitive, the path is not
        ("HTTPS://News.Example.COM/Path/To/Story", "https://news.example.com/Path/To/Story"),
        # an empty path is the root
        ("https://news.example.com", "https://news.example.com/"),
        ("  https://news.example.com/a  ", "https://news.example.com/a"),
    ],
)
def test_normalize_url_examples(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


def test_two_spellings_of_one_article_are_equal() -> None:
    a = "HTTP://Example.org:80/news/Story-1?utm_source=twitter&utm_medium=social&id=9#comments"
    b = "http://example.org/news/Story-1?id=9&fbclid=abc"
    assert normalize_url(a) == normalize_url(b) == "http://example.org/news/Story-1?id=9"


def test_different_articles_stay_different() -> None:
    assert normalize_url("https://example.org/news?id=1") != normalize_url("https://example.org/news?id=2")
    assert normalize_url("https://example.org/News") != normalize_url("https://example.org/news")


def test_host_of_keys_per_host_limits() -> None:
    assert host_of("http://127.0.0.1:8080/feed") == "127.0.0.1:8080"
    assert host_of("https://Example.COM/x") == "example.com"
    assert host_of("not a url") == ""


# Whitespace is left out here: see test_whitespace_before_a_fragment_is_idempotent for why.
_SEGMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=8)


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    label = draw(st.text(alphabet="abcxyzABCXYZ0189", min_size=1, max_size=10))
    host = f"{label}.{draw(st.sampled_from(['com', 'ORG', 'co.uk', 'Example.net']))}"
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    path = "/".join(draw(st.lists(_SEGMENT, max_size=4)))
    keys = st.sampled_from(["id", "q", "utm_source", "UTM_Campaign", "fbclid", "page", "a b", "é"]) | _SEGMENT
    query = "&".join(f"{k}={v}" for k, v in draw(st.lists(st.tuples(keys, _SEGMENT), max_size=4)))
    fragment = draw(st.sampled_from(["", "#top", "#"]))
    return f"{scheme}://{host}{port}/{path}" + (f"?{query}" if query else "") + fragment


@settings(max_examples=200, deadline=None, database=None)
@given(_urls())
def test_normalize_url_is_idempotent(url: str) -> None:
    once = normalize_url(url)
    assert normalize_url(once) == once
    assert "#" not in once
    keys = [k.lower() for k, _ in parse_qsl(urlsplit(once).query, keep_blank_values=True)]
    assert not [k for k in keys if k.startswith("utm_") or k == "fbclid"]


@pytest.mark.parametrize("url", ["https://example.com/story #comments", "https://example.com/story ?utm_source=rss"])
def test_whitespace_before_a_fragment_is_idempotent(url: str) -> None:
    once = normalize_url(url)
    assert normalize_url(once) == once


# -- html_to_text ---------------------------------------------------------------------------


def test_paragraphs_become_blank_line_separated() -> None:
    html = "<p>First paragraph.</p><p>Second   paragraph  spans lines.</p><div>Third.</div>"
    assert html_to_text(html) == "First paragraph.\n\nSecond paragraph spans lines.\n\nThird."


def test_source_line_wrapping_inside_a_paragraph_is_not_a_break() -> None:
    html = "<p>A paragraph that the publisher's CMS\nwrapped at eighty columns\n  with indentation.</p><p>Next.</p>"
    assert html_to_text(html) == "A paragraph that the publisher's CMS wrapped at eighty columns with indentation.\n\nNext."


def test_line_breaks_and_lists_separate_text() -> None:
    assert html_to_text("one<br>two<ul><li>a</li><li>b</li></ul>") == "one\n\ntwo\n\na\n\nb"


def test_inline_tags_do_not_split_words() -> None:
    assert html_to_text("<p>The <b>bold</b> and <a href='/x'>linked</a> words.</p>") == "The bold and linked words."


def test_script_style_and_friends_are_dropped() -> None:
    html = (
        "<p>Visible</p><script>alert('hidden')</script><style>p { color: red }</style>"
        "<noscript>no js</noscript><iframe src='x'>frame</iframe><p>Also visible</p>"
    )
    text = html_to_text(html)
    assert text == "Visible\n\nAlso visible"
    for hidden in ("alert", "color", "no js", "frame"):
        assert hidden not in text


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Fish &amp; chips</p>", "Fish & chips"),
        ("caf&eacute; &mdash; cr&egrave;me", "café — crème"),  # entities without tags
        ("<p>5 &lt; 6 &gt; 4</p>", "5 < 6 > 4"),
        ("<p>non&nbsp;breaking</p>", "non breaking"),
        ("<p>&#8220;quoted&#8221; &#x2014; dash</p>", "\u201cquoted\u201d \u2014 dash"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),  # escaped markup is text
    ],
)
def test_entities_are_decoded(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_plain_text_is_only_tidied() -> None:
    assert html_to_text("  plain   text\n\n\n\nnext\x07 para  ") == "plain text\n\nnext para"


def test_clean_text_drops_control_characters_and_keeps_paragraphs() -> None:
    assert clean_text("a\x00b\x1b c\n\n\n\nd\t\te") == "ab c\n\nd e"


def test_broken_markup_still_gives_text() -> None:
    assert html_to_text("<p>unclosed <b>bold <i>both") == "unclosed bold both"
    assert "text" in html_to_text("<<p>>text</p")


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_html_to_text_never_raises_on_arbitrary_text(text: str) -> None:
    out = html_to_text(text)
    assert isinstance(out, str)
    assert "\x00" not in out


_TAGS = st.sampled_from(["<p>", "</p>", "<script>", "</script>", "<b>", "<br/>", "<!--", "-->", "<![CDATA[", "&amp;", "&#0;", "&#xD800;", "<", ">", "&"])


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(_TAGS | st.text(max_size=5), max_size=20).map("".join))
def test_html_to_text_never_raises_on_tag_soup(text: str) -> None:
    assert isinstance(html_to_text(text), str)
