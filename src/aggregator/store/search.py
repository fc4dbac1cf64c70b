"""Full-text search over stored articles: SQLite's FTS5 index (``schema.SEARCH_DDL``), or a plain
LIKE scan on a database without one. The query is a list of words and phrases, never FTS syntax
typed by a user, so no query can fail to parse.

Functions take the SQLAlchemy connection they run on; ``Store`` owns it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, text
from sqlalchemy.engine import Connection

from ..models import SearchHit
from .articles import as_utc, stored_time
from .schema import POSTGRES_DOCUMENT, articles, has_search_index, story_members

START, END = "\x02", "\x03"  # around each matched word in a snippet (control characters no stored text keeps)
SNIPPET_WORDS = 24
_TERMS = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w+")


def terms(query: str) -> list[str]:
    """The words and "quoted phrases" of a query, as the index tokenizes them (punctuation is
    a separator: ``al-Assad`` is the phrase "al Assad")."""
    found = []
    for phrase, word in _TERMS.findall(query):
        words = _WORD.findall(phrase or word)
        if words:
            found.append(" ".join(words))
    return found


def search(conn: Connection, query_terms: Sequence[str], limit: int) -> list[SearchHit]:
    """Articles (that belong to a story) matching every term, newest first, at most ``limit``."""
    if not query_terms:
        return []
    if has_search_index(conn):
        return _fts(conn, query_terms, limit)
    if conn.dialect.name == "postgresql":
        return _postgres(conn, query_terms, limit)
    return _like(conn, query_terms, limit)


def _fts(conn: Connection, query_terms: Sequence[str], limit: int) -> list[SearchHit]:
    match = " ".join('"' + t.replace('"', '""') + '"' for t in query_terms)  # each term quoted: all must match
    rows = conn.execute(
        text(
            "SELECT a.id, m.story_id, a.title, a.source, a.url, a.published_at,"
            f" snippet(articles_fts, -1, '{START}', '{END}', '…', {SNIPPET_WORDS})"
            " FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid"
            " JOIN story_members m ON m.article_id = a.id"
            " WHERE articles_fts MATCH :match ORDER BY a.published_at DESC, a.id DESC LIMIT :limit"
        ),
        {"match": match, "limit": limit},
    )
    return [_hit(r[0], r[1], r[2], r[3], r[4], as_utc(r[5]), r[6]) for r in rows]


def _postgres(conn: Connection, query_terms: Sequence[str], limit: int) -> list[SearchHit]:
    """PostgreSQL's full-text search over the expression ``schema.POSTGRES_SEARCH_INDEX`` indexes;
    every term a phrase that must match (the 'simple' configuration: words as written, no stemming)."""
    names = [f"t{i}" for i in range(len(query_terms))]
    query = " && ".join(f"phraseto_tsquery('simple', :{n})" for n in names)
    rows = conn.execute(
        text(
            f"SELECT a.id, m.story_id, a.title, a.source, a.url, a.published_at,"
            f" ts_headline('simple', {POSTGRES_DOCUMENT}, q.q, :options)"
            f" FROM articles a JOIN story_members m ON m.article_id = a.id, (SELECT {query} AS q) q"
            f" WHERE to_tsvector('simple', {POSTGRES_DOCUMENT}) @@ q.q ORDER BY a.published_at DESC, a.id DESC LIMIT :limit"
        ),
        {**dict(zip(names, query_terms, strict=True)), "limit": limit,
         "options": f"StartSel={START}, StopSel={END}, MaxWords={SNIPPET_WORDS}, MinWords={SNIPPET_WORDS // 2}, ShortWord=0"},
    )
    return [_hit(r[0], r[1], r[2], r[3], r[4], as_utc(r[5]), r[6]) for r in rows]


def _like(conn: Connection, query_terms: Sequence[str], limit: int) -> list[SearchHit]:
    published = stored_time(articles.c.published_at)
    conditions = [or_(articles.c.title.ilike(f"%{_escape(t)}%", escape="\\"), articles.c.text.ilike(f"%{_escape(t)}%", escape="\\"))
                  for t in query_terms]
    query = (
        select(articles.c.id, story_members.c.story_id, articles.c.title, articles.c.source, articles.c.url, published, articles.c.text)
        .join(story_members, story_members.c.article_id == articles.c.id)
        .where(and_(*conditions))
        .order_by(articles.c.published_at.desc(), articles.c.id.desc())
        .limit(limit)
    )
    return [_hit(r[0], r[1], r[2], r[3], r[4], as_utc(r[5]), _marked(r[6], query_terms)) for r in conn.execute(query)]


def _escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _marked(body: str, query_terms: Sequence[str]) -> str:
    """A snippet of ``body`` around the first term found, terms marked as FTS5's snippet marks them."""
    pattern = re.compile("|".join(re.escape(t) for t in query_terms), re.IGNORECASE)
    first = pattern.search(body)
    at = first.start() if first else 0
    start = max(0, body.rfind(" ", 0, max(0, at - 80)) + 1) if at > 80 else 0
    excerpt = body[start : start + 200]
    return ("…" if start else "") + pattern.sub(lambda m: START + m.group(0) + END, excerpt) + ("…" if start + 200 < len(body) else "")


def _hit(article_id: int, story_id: int, title: str, source: str, url: str | None, published: datetime, snippet: str) -> SearchHit:
    """A hit with its snippet's marks taken out as [start, end) offsets."""
    plain: list[str] = []
    marks: list[tuple[int, int]] = []
    at = begin = 0
    for part in re.split(f"([{START}{END}])", snippet or ""):
        if part == START:
            begin = at
        elif part == END:
            marks.append((begin, at))
        else:
            plain.append(part)
            at += len(part)
    return SearchHit(article_id, story_id, title, source, url, published, "".join(plain).replace("\n", " "), tuple(marks))
