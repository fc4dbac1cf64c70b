"""OPML import: real subscriptions come out as config entries; entity tricks are refused (defusedxml)."""

from __future__ import annotations

import yaml

from aggregator.config import config_from_dict
from helpers import cli


def test_opml_feeds_append_to_a_valid_config(tmp_path):
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="News">'
        '<outline text="BBC" title="BBC World" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"/>'
        '<outline text="Le Monde « Intl »" xmlUrl="https://www.lemonde.fr/international/rss_full.xml"/>'
        '<outline text="dupe" xmlUrl="HTTPS://feeds.bbci.co.uk:443/news/world/rss.xml"/>'
        '<outline text="not http" xmlUrl="ftp://example.org/feed"/></outline></body></opml>',
        encoding="utf-8",
    )
    config = tmp_path / "feeds.yaml"
    config.write_text("settings:\n  storage: .\nfeeds:\n  - url: https://example.org/rss", encoding="utf-8")  # no final newline
    result = cli("opml", str(opml), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "left out: feed url must start with http:// or https://, got 'ftp://example.org/feed'" in result.stderr
    with config.open("a", encoding="utf-8") as fh:  # what `>> config/feeds.yaml` does
        fh.write(result.stdout)
    loaded = config_from_dict(yaml.safe_load(config.read_text(encoding="utf-8")), config)
    assert [f.name for f in loaded.feeds] == [None, "BBC World", "Le Monde « Intl »"]

    # Run again (or with feeds the config has already): nothing listed twice, so the config stays valid.
    again = cli("opml", str(opml), "--config", str(config))
    assert again.returncode == 0 and again.stdout == "" and "2 already in" in again.stderr, again.stderr


def test_opml_with_entities_is_refused_with_one_line(tmp_path):
    opml = tmp_path / "evil.opml"
    opml.write_text('<?xml version="1.0"?><!DOCTYPE o [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                    '<opml><body><outline xmlUrl="http://a/&x;"/></body></opml>', encoding="utf-8")
    result = cli("opml", str(opml))
    assert result.returncode == 2
    assert "evil.opml: refused" in result.stderr and "Traceback" not in result.stderr


def test_feed_scheme_and_upper_case_schemes_are_imported_as_http(tmp_path):
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body>'
        '<outline text="Feed scheme" xmlUrl="feed://news.example.org/rss"/>'
        '<outline text="Feed then https" xmlUrl="feed:https://secure.example.org/atom"/>'
        '<outline text="Shouting" xmlUrl="HTTPS://LOUD.example.org/Feed.xml"/>'
        '<outline text="Same as shouting" xmlUrl="https://loud.example.org:443/Feed.xml"/>'
        '<outline text="https://bare.example.org/rss" xmlUrl="https://bare.example.org/rss"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    from aggregator.config import feeds_from_opml

    found, refused = feeds_from_opml(opml)
    assert refused == []
    assert [(f.url, f.name) for f in found] == [
        ("http://news.example.org/rss", "Feed scheme"),
        ("https://secure.example.org/atom", "Feed then https"),
        ("https://LOUD.example.org/Feed.xml", "Shouting"),  # the scheme is lowered; the host kept as written (compared normalised)
        ("https://bare.example.org/rss", None),  # an outline whose only text is its address names nothing
    ]
    config = tmp_path / "feeds.yaml"
    config.write_text("settings:\n  storage: .\nfeeds:\n  - url: http://news.example.org/rss\n", encoding="utf-8")
    result = cli("opml", str(opml), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "feed://" not in result.stdout and "HTTPS://" not in result.stdout
    assert "1 already in" in result.stderr
    with config.open("a", encoding="utf-8") as fh:
        fh.write(result.stdout)
    loaded = config_from_dict(yaml.safe_load(config.read_text(encoding="utf-8")), config)
    assert len(loaded.feeds) == 4


def test_export_then_import_gives_back_the_feeds(tmp_path):
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "settings:\n  storage: .\nfeeds:\n"
        '  - url: https://a.example.org/rss\n    name: "Ampersand & <Angle> \\"Quotes\\""\n    interval: 30m\n'
        "  - url: https://b.example.org/atom?x=1&y=2\n",
        encoding="utf-8",
    )
    exported = cli("feeds", "export", "--config", str(config))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    opml = tmp_path / "out.opml"
    written = cli("feeds", "export", "--config", str(config), "--output", str(opml))
    assert written.returncode == 0 and written.stdout == "" and "2 feed(s)" in written.stderr
    assert opml.read_text(encoding="utf-8").split("<dateCreated>")[0] == exported.stdout.split("<dateCreated>")[0]
    from aggregator.config import feeds_from_opml

    found, refused = feeds_from_opml(opml)
    assert refused == []
    assert [(f.url, f.name) for f in found] == [
        ("https://a.example.org/rss", 'Ampersand & <Angle> "Quotes"'),
        ("https://b.example.org/atom?x=1&y=2", None),
    ]
    # Imported into a config that has them: nothing to add.
    again = cli("opml", str(opml), "--config", str(config))
    assert again.returncode == 0 and again.stdout == "" and "2 already in" in again.stderr
