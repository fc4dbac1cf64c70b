"""`aggregator eval`: the labeled-file format, its errors, and quality floors on the shared dev data.

The dev data lives in ../shared/data (research-only, never copied here); the floor tests are slow
(`pytest -m slow`) and skip with a clear message when it is absent. Floors sit a little under what
the current rule reaches.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.config import DedupSettings
from aggregator.errors import EvalError
from aggregator.tools.evaluate import evaluate, read_labeled
from aggregator.tools.wirecopies import copy_detection
from helpers import SHARED, cli

DATA = SHARED / "data"
# file: (B-cubed F1 floor, B-cubed precision floor); measured: basil 1.000/1.000, allsides 0.954/0.976, probe 0.803/0.864 (one undated batch)
FLOORS = {"basil": (0.98, 0.98), "allsides_neus": (0.93, 0.95), "allsides_neus_probe": (0.78, 0.85)}
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not present: dev-set evaluation skipped")


def write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def row(i: int, cluster: str, title: str, text: str, published: str | None = "2024-05-01T00:00:00Z") -> dict[str, object]:
    return {"id": f"a{i}", "title": title, "text": text, "published": published, "source": f"outlet{i}.example",
            "url": None, "cluster": cluster, "lang": "en"}


STORM = "Heavy rain flooded the harbour town of Port Elwyn overnight and ferry crossings to the islands were suspended, officials said. " * 3
CHESS = "A twelve-year-old from Sheffield won the national chess championship in Leeds, beating three grandmasters over nine rounds. " * 3


def test_out_file_has_every_id_exactly_once_and_scores_print(tmp_path):
    path = write(tmp_path / "small.jsonl", [row(1, "s", "Storm floods Port Elwyn", STORM), row(2, "c", "Chess prodigy wins", CHESS),
                                            row(3, "s", "Port Elwyn ferries halted by flood", STORM)])
    result = cli("eval", str(path), "--out", str(tmp_path / "assign.jsonl"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bcubed"]["f1"] == 1.0 and report["predicted_clusters"] == 2 and report["gold_clusters"] == 2
    assigned = [json.loads(line) for line in (tmp_path / "assign.jsonl").read_text().splitlines()]
    assert [a["id"] for a in assigned] == ["a1", "a2", "a3"]
    assert assigned[0]["story"] == assigned[2]["story"] != assigned[1]["story"]


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"id": 1, "title": "t", "text": "x", "published": null, "cluster": 1}', "{not json"], ":2: not valid JSON"),
        (['{"id": 1, "title": "t", "published": null, "cluster": 1}'], ":1: missing field(s): text"),
        (['{"id": 1, "title": "t", "text": "x", "published": "yesterday", "cluster": 1}'], ":1: published is not an ISO 8601 date"),
        (['{"id": 1, "title": "t", "text": "x", "published": null, "cluster": 1}'] * 2, ":2: duplicate id '1'"),
        (["[1, 2]"], ":1: expected a JSON object"),
        (['{"id": 1, "title": "t", "text": "x", "published": null, "cluster": null}'], ":1: cluster must be a string or an integer"),
        (['{"id": 1, "title": "t", "text": "x", "published": null, "cluster": 1, "source": 5}'], ":1: source must be a string or null"),
    ],
)
def test_malformed_files_name_the_line(tmp_path, lines, message):
    path = write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(EvalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_labeled(path)
    result = cli("eval", str(path))
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_json_line_separators_inside_strings_and_bytes_that_are_not_utf8(tmp_path):
    ok = row(1, "s", "Storm\u2028floods Port Elwyn", STORM)  # U+2028/2029/0085 are legal unescaped in a JSON string
    ok["text"] = STORM + "\u2029" + "\u0085"
    path = tmp_path / "seps.jsonl"
    path.write_text(json.dumps(ok, ensure_ascii=False) + "\n", encoding="utf-8")
    assert [r.id for r in read_labeled(path)] == ["a1"]
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps(row(1, "s", "a", STORM)).encode() + b"\n" + json.dumps(row(2, "s", "Caf\u00e9", STORM)).encode("latin-1").replace(b"\\u00e9", b"\xe9") + b"\n")
    with pytest.raises(EvalError, match=":2: not UTF-8"):
        read_labeled(bad)


def test_null_dates_make_one_batch(tmp_path):
    rows = [row(1, "s", "Storm floods Port Elwyn", STORM, None), row(2, "s", "Port Elwyn ferries halted", STORM, None)]
    assert evaluate(read_labeled(write(tmp_path / "batch.jsonl", rows)), DedupSettings()).scores.bcubed_f1 == 1.0


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("name", sorted(FLOORS))
def test_dev_quality_floor(name):
    f1_floor, precision_floor = FLOORS[name]
    result = evaluate(read_labeled(DATA / name / "dev.jsonl"), DedupSettings())
    s = result.scores
    print(f"{name}: B3 P/R/F1 {s.bcubed_precision:.3f}/{s.bcubed_recall:.3f}/{s.bcubed_f1:.3f} "
          f"pairwise F1 {s.pairwise_f1:.3f}, {s.predicted_clusters}/{s.gold_clusters} clusters, {result.articles_per_second:.0f} articles/s")
    assert s.bcubed_f1 >= f1_floor and s.bcubed_precision >= precision_floor


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("name", ["basil", "allsides_neus", "allsides_neus_probe"])
def test_copy_detection_floor(name):
    s = copy_detection(read_labeled(DATA / name / "dev.jsonl"), DedupSettings())
    assert s.pairwise_f1 >= 0.99, (s.pairwise_precision, s.pairwise_recall)


def test_wire_reprints_do_not_lock_an_independent_report_out_of_its_story() -> None:
    """Two stories, each a wire original, four reprints (new headline, trimmed, a changed figure,
    a byline) and one independent rewrite by another outlet; then two look-alikes in the same city
    on later days. Each reprint used to raise the story's crowding towards 1, so the rewrite
    started a story of its own."""
    records = read_labeled(Path(__file__).parent / "data" / "reprints_en.jsonl")
    result = evaluate(records, DedupSettings())
    story = result.assignment
    for event in ("en1", "en2"):
        assert story[f"{event}-rewrite"] == story[f"{event}-orig"], event
        assert {result.kinds[f"{event}-{k}"] for k in ("headline", "trim", "number", "byline")} == {"copy"}
    assert len({story["en1-orig"], story["en2-orig"], story["enL1"], story["enL2"]}) == 4


def test_a_story_reprinted_fifteen_times_still_takes_rewrites_a_day_later() -> None:
    """A QA pass's file: a wire story, fifteen reprints by other outlets, three independent rewrites
    9, 14 and 30 hours later, and unrelated background. Counting every reprint in the document
    frequencies made the story's own words common, so the 30-hour rewrite's rarest terms no longer
    found it."""
    records = read_labeled(Path(__file__).parent / "data" / "syndicated_wire.jsonl")
    result = evaluate(records, DedupSettings())
    assert {result.assignment[i] for i in ("rw1", "rw2", "rw3")} == {result.assignment["wire-orig"]}
    assert {result.kinds[f"r{i:02d}"] for i in range(1, 16)} == {"copy"}
    assert result.scores.bcubed_precision == 1.0


def test_title_only_entries_and_teasers_do_not_push_reports_out_of_their_story() -> None:
    """A QA pass's file: look-alike quakes, votes and shootings, each story with aggregator-style
    title-only entries, one-line teasers and live-blog lines beside its full reports. A derailment
    story that took a bare headline and a teaser lost its three later independent reports: the
    short members, scored like full ones, pulled its mean down."""
    records = read_labeled(Path(__file__).parent / "data" / "short_items.jsonl")
    result = evaluate(records, DedupSettings())
    assert {result.assignment[i] for i in ("t-derail-title", "t-derail-teaser", "rw1", "rw2", "rw3")} == {result.assignment["wire-orig"]}
    assert result.scores.bcubed_precision == 1.0


@pytest.mark.parametrize("name", ["section_reposts", "reprints_no_source"])
def test_an_outlets_reposts_and_sourceless_reprints_stay_copies(name: str) -> None:
    """QA files: one outlet posts one article in six of its section feeds; or 24 reprints arrive with
    no outlet named. Reposts of one's own article (or, outlets unknown, any reprint) used to count as
    the outlet repeating itself, so from the fifth (or seventeenth) the story's own text was
    "boilerplate": a repost became a report and the independent rewrites started stories of their own."""
    records = read_labeled(Path(__file__).parent / "data" / f"{name}.jsonl")
    result = evaluate(records, DedupSettings())
    assert (result.scores.bcubed_precision, result.scores.bcubed_recall) == (1.0, 1.0)
    assert {result.kinds[r.id] for r in records if r.id.startswith(("sf-", "a-r0", "a-r1", "a-x")) and r.id != "sf-followup"} == {"copy"}
