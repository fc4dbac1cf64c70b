"""Sanity checker for the bundled demo corpus (demo_corpus.json).

Stdlib only. Run:  python tests/demo_corpus_check.py [path/to/demo_corpus.json]
Exits non-zero (AssertionError) on the first schema or content violation,
otherwise prints summary counts.
"""
import collections
import json
import pathlib
import re
import sys

DEFAULT_PATH = pathlib.Path(__file__).resolve().parents[1] / "src" / "aggregator" / "tools" / "demo_corpus.json"

OUTLET_KEYS = {"slug", "name", "format", "feed_content", "boilerplate", "lang"}
ARTICLE_KEYS = {"key", "event", "outlet", "hour", "title", "byline", "paragraphs", "place"}
FORMATS = {"rss2", "atom", "rss1"}
FEED_CONTENT = {"full", "summary"}
LANGS = {"en", "fr"}

MIN_WORDS, MAX_WORDS = 120, 350
MIN_PARAS, MAX_PARAS = 3, 7
MAX_SENTENCES = 4
EVENT_MIN, EVENT_MAX = 3, 7

# Sentence boundary: . ! or ? (optionally followed by a closing quote), whitespace,
# then something that can start a sentence. Deliberately conservative.
_SENT_SPLIT = re.compile(r'(?<=[.!?])["\u201d]?\s+(?=["\u201c\u00abA-Z\u00c0-\u00dd])')
_HTML = re.compile(r"<[a-zA-Z/!][^>]*>|&[a-zA-Z]+;|&#\d+;")
_URL = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|org|net|co\.uk|fr)\b", re.I)


def sentences(paragraph):
    return [s for s in _SENT_SPLIT.split(paragraph.strip()) if s]


def words(text):
    return len(text.split())


def check(path):
    data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    assert set(data) == {"outlets", "articles"}, f"top-level keys: {sorted(data)}"

    # ---------------------------------------------------------------- outlets
    outlets = {}
    for o in data["outlets"]:
        assert set(o) == OUTLET_KEYS, f"outlet keys {sorted(o)}"
        assert re.fullmatch(r"[a-z0-9]+", o["slug"]), o["slug"]
        assert o["slug"] not in outlets, f"duplicate outlet {o['slug']}"
        assert o["format"] in FORMATS, o
        assert o["feed_content"] in FEED_CONTENT, o
        assert o["lang"] in LANGS, o
        assert isinstance(o["name"], str) and o["name"].strip(), o
        assert isinstance(o["boilerplate"], list) and o["boilerplate"], o
        assert all(isinstance(b, str) and b.strip() for b in o["boilerplate"]), o
        outlets[o["slug"]] = o
    assert len(outlets) == 8, f"expected 8 outlets, got {len(outlets)}"
    fmts = collections.Counter(o["format"] for o in outlets.values())
    assert all(fmts[f] >= 1 for f in FORMATS), f"formats: {dict(fmts)}"
    assert sum(o["feed_content"] == "summary" for o in outlets.values()) >= 2, "need >=2 summary feeds"
    assert any(o["lang"] == "fr" for o in outlets.values()), "need a French outlet"

    # ---------------------------------------------------------------- articles
    keys, titles = set(), {}
    by_event = collections.defaultdict(list)
    for a in data["articles"]:
        k = a.get("key")
        assert set(a) == ARTICLE_KEYS, f"{k}: article keys {sorted(a)}"
        assert k not in keys, f"duplicate key {k}"
        keys.add(k)
        assert k == f"{a['event']}/{a['outlet']}", f"key mismatch {k}"
        assert re.fullmatch(r"[a-z0-9-]+", a["event"]), k
        assert a["outlet"] in outlets, f"{k}: unknown outlet"
        assert isinstance(a["hour"], (int, float)) and not isinstance(a["hour"], bool), k
        assert 0 <= a["hour"] < 72, f"{k}: hour {a['hour']}"
        assert isinstance(a["title"], str) and 10 <= len(a["title"]) <= 160, f"{k}: title"
        assert a["title"] not in titles, f"{k}: title duplicates {titles[a['title']]}"
        titles[a["title"]] = k
        assert a["byline"] is None or (isinstance(a["byline"], str) and a["byline"].strip()), k
        assert isinstance(a["place"], str) and a["place"].strip(), k

        paras = a["paragraphs"]
        assert isinstance(paras, list) and MIN_PARAS <= len(paras) <= MAX_PARAS, \
            f"{k}: {len(paras)} paragraphs"
        assert len(set(paras)) == len(paras), f"{k}: repeated paragraph"
        for p in paras + [a["title"]]:
            assert isinstance(p, str) and p == p.strip() and p, f"{k}: empty/unstripped text"
            assert "\n" not in p, f"{k}: newline inside paragraph"
            assert not _HTML.search(p), f"{k}: HTML in text: {p[:60]!r}"
            assert not _URL.search(p), f"{k}: URL in text: {p[:60]!r}"
        for p in paras:
            n = len(sentences(p))
            assert 1 <= n <= MAX_SENTENCES, f"{k}: paragraph with {n} sentences: {p[:60]!r}"
        nw = sum(words(p) for p in paras)
        assert MIN_WORDS <= nw <= MAX_WORDS, f"{k}: {nw} words"
        by_event[a["event"]].append(a)

    # ---------------------------------------------------------------- events
    singletons = [e for e, arts in by_event.items() if len(arts) == 1]
    multi = {e: arts for e, arts in by_event.items() if len(arts) > 1}
    for e, arts in multi.items():
        assert EVENT_MIN <= len(arts) <= EVENT_MAX, f"event {e}: {len(arts)} articles"
        places = {a["place"] for a in arts}
        assert places, e
    n_event_articles = sum(len(v) for v in multi.values())
    assert 25 <= len(multi) <= 35, f"{len(multi)} multi-outlet events"
    assert 110 <= n_event_articles <= 160, f"{n_event_articles} event articles"
    assert 10 <= len(singletons) <= 20, f"{len(singletons)} singletons"

    # every outlet publishes something; French outlet covers >=3 multi-outlet events
    per_outlet = collections.Counter(a["outlet"] for a in data["articles"])
    assert set(per_outlet) == set(outlets), f"silent outlets: {set(outlets) - set(per_outlet)}"
    fr = {s for s, o in outlets.items() if o["lang"] == "fr"}
    fr_events = {e for e, arts in multi.items() if any(a["outlet"] in fr for a in arts)}
    assert len(fr_events) >= 3, f"French outlet in only {len(fr_events)} events"

    # ---------------------------------------------------------------- Idlib trap
    a_arts, b_arts = by_event.get("idlib-strike-a", []), by_event.get("idlib-strike-b", [])
    assert 5 <= len(a_arts) <= 6, f"idlib-strike-a has {len(a_arts)} articles"
    assert 3 <= len(b_arts) <= 4, f"idlib-strike-b has {len(b_arts)} articles"
    assert all(2 <= a["hour"] <= 10 for a in a_arts), "idlib-strike-a hours"
    assert all(50 <= a["hour"] <= 58 for a in b_arts), "idlib-strike-b hours"
    a_text = [" ".join(a["paragraphs"]) for a in a_arts]
    assert any("12" in t for t in a_text), "idlib-strike-a: original toll of 12"
    assert any("14" in t or "quatorze" in t for t in a_text), "idlib-strike-a: updated toll of 14"
    assert any("Observatory" in t for t in a_text), "idlib-strike-a: SOHR attribution"
    assert any(("Russia" in t and "Turkey" in t and "2020" in t) for t in a_text), "idlib-strike-a: ceasefire"
    assert any(("HTS" in t or "Hayat Tahrir" in t) for t in a_text), "idlib-strike-a: HTS"
    assert all(("Idlib" in a["place"] or "Idleb" in a["place"]) for a in a_arts), "idlib-strike-a places"
    b_text = [" ".join(a["paragraphs"]) for a in b_arts]
    assert all(("five" in t.lower() or "cinq" in t.lower()) for t in b_text), "idlib-strike-b: toll of 5"
    assert all(("Idlib" in t or "Idleb" in t) for t in b_text), "idlib-strike-b mentions Idlib"

    # other near-topic pairs that must stay apart
    for e in ("bank-rate-nz", "bank-rate-ca", "quake-peru", "quake-sulawesi"):
        assert e in multi, f"missing trap event {e}"

    # ---------------------------------------------------------------- summary
    wc = [sum(words(p) for p in a["paragraphs"]) for a in data["articles"]]
    print(f"outlets:        {len(outlets)}  formats={dict(fmts)}  "
          f"summary={sum(o['feed_content'] == 'summary' for o in outlets.values())}  "
          f"fr={sorted(fr)}")
    print(f"articles:       {len(data['articles'])}  (words min={min(wc)} max={max(wc)} "
          f"mean={sum(wc) / len(wc):.0f})")
    print(f"events:         {len(multi)} multi-outlet events, {n_event_articles} articles")
    print(f"singletons:     {len(singletons)}")
    print(f"french events:  {len(fr_events)}")
    print("per outlet:     " + ", ".join(f"{s}={per_outlet[s]}" for s in outlets))
    for e, arts in sorted(multi.items(), key=lambda kv: min(a["hour"] for a in kv[1])):
        hrs = sorted(a["hour"] for a in arts)
        print(f"  {e:28s} n={len(arts)}  hours {hrs[0]:5.1f}-{hrs[-1]:5.1f}  "
              + " ".join(a["outlet"] for a in sorted(arts, key=lambda a: a["hour"])))
    print("OK")


if __name__ == "__main__":
    check(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PATH)
