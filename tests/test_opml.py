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
