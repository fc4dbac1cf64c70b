"""Facts that differ: the extraction rules on focused cases, their precision and recall on the
hand-labelled sentences, and the comparison of a story's variants."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.facts import (
    Figure,
    compare,
    extract_attributions,
    extract_dates,
    extract_figures,
    extract_places,
    summary_line,
)
from aggregator.tools.factscore import score_file

LABELLED = Path(__file__).parent / "data" / "facts_labelled.jsonl"
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_79923701ef7a5e6b.txt"


def figs(text: str, lang: str | None = None) -> list[tuple[int, str | None, str]]:
    return [(f.value, f.qualifier, f.what) for f in extract_figures(text, lang)]


def test_seed_toll_with_its_source() -> None:
    text = "At least 12 people have been killed in regime bombings in Idleb, according to the Syrian Observatory for Human Rights (OSDH)."
    [f] = extract_figures(text, "en")
    assert (f.value, f.qualifier, f.what, f.counted) == (12, "at least", "killed", "people")
    assert f.attribution == "Syrian Observatory for Human Rights"
    assert text[f.start : f.end] == f.text == "At least 12 people"


def test_a_sub_count_with_what_it_counts() -> None:
    [f] = extract_figures("HTS said 3 of its members were among the dead.", "en")
    assert (f.value, f.what, f.counted, f.attribution) == (3, "killed", "of its members", "HTS")


def test_french_equivalents() -> None:
    [f] = extract_figures("Au moins 12 personnes ont été tuées à Idleb, selon l'Observatoire syrien des droits de l'homme.", "fr")
    assert (f.value, f.qualifier, f.what, f.attribution) == (
        12,
        "at least",
        "killed",
        "Observatoire syrien des droits de l'homme",
    )
    assert figs("L'explosion a fait 27 morts et plus de 60 blessés, a indiqué la police.") == [
        (27, None, "killed"),
        (60, "more than", "injured"),
    ]
    assert figs("Selon HTS, au moins 3 de ses membres ont péri.") == [(3, "at least", "killed")]
    assert figs("Une douzaine de manifestants ont été interpellés.") == [(12, "about", "arrested")]
    assert figs("Le bilan s'élève désormais à 1 284 morts.") == [(1284, None, "killed")]


def test_a_list_shares_its_verb_and_a_toll_counts_the_dead() -> None:
    assert figs("A man, a woman, two children and 8 combatants were killed.") == [(2, None, "killed"), (8, None, "killed")]
    assert figs("The death toll from the earthquake has risen to 1,284.") == [(1284, None, "killed")]
    assert figs("The blast killed 27 people and wounded more than 60 others.") == [
        (27, None, "killed"),
        (60, "more than", "injured"),
    ]
    assert figs("Health officials put the number of dead at 63, up from 41 on Sunday.") == [
        (63, None, "killed"),
        (41, None, "killed"),
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Eleven people remain unaccounted for.", [(11, None, "missing")]),
        ("More than a dozen people were wounded.", [(12, "more than", "injured")]),
        ("Dozens of people have been killed.", [(24, "dozens", "killed")]),
        ("Des dizaines de personnes ont été tuées.", [(20, "dozens", "killed")]),
        ("An estimated 1.2 million people have fled the city.", [(1_200_000, "about", "displaced")]),
        ("HORROR AS 9 DIE IN SEASIDE BLAZE", [(9, None, "killed")]),
        ("Cops nab 7 in dawn drug raids", [(7, None, "arrested")]),
        ("Le carambolage a fait un mort.", [(1, None, "killed")]),
    ],
)
def test_numbers_in_words_and_vague_quantities(text: str, expected: list[tuple[int, str | None, str]]) -> None:
    assert figs(text) == expected


def test_a_range_is_its_low_end_with_its_high_end_kept() -> None:
    [f] = extract_figures("Between 10 and 15 people are believed to have died in the fire.")
    assert (f.value, f.high, f.qualifier, f.what, f.label) == (10, 15, "between", "killed", "10–15")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The 12-year-old boy was killed instantly.", []),  # an age
        ("Three men aged 25, 31 and 40 were killed in 2019 in the attack.", [(3, None, "killed")]),  # ages, a year
        ("The government pledged $50 million to those injured in the 2021 floods.", []),  # money, a year
        ("Unemployment rose to 7.4 percent; 4% of those hurt were children.", []),  # percentages
        ("The score was 3-1 and 45,000 fans were in the stadium.", []),  # a score; no trigger
        ("Call 0800 555 0123 if you saw the crash that killed him.", []),  # a phone number
        ("It was one of the deadliest attacks, killing a man on the 3rd day.", []),  # "one of the", an ordinal
        ("The strike, on 12 March, killed civilians.", []),  # a date
        ("The bombing killed 14 people, among them five police officers.", [(14, None, "killed")]),  # a subset is no figure
        ("Citing hospital sources, the agency said 19 of the injured were in critical condition.", []),  # a subset
        ("Un garçon de 12 ans a été légèrement blessé.", []),  # an age; "un garçon" is not a count
        ("Ten years of war have killed more than 500,000 people.", [(500_000, "more than", "killed")]),  # a duration
    ],
)
def test_hard_negatives(text: str, expected: list[tuple[int, str | None, str]]) -> None:
    assert figs(text) == expected


def test_attributions_in_both_languages_and_no_pronouns() -> None:
    def sources(text: str) -> list[str]:
        return [a.source for a in extract_attributions(text)]

    assert sources("Four soldiers were killed, military sources said.") == ["military sources"]
    assert sources("Gaza death toll tops 300, per health officials") == ["health officials"]
    assert sources("Citing hospital sources, the agency said 19 were hurt.") == ["hospital sources", "agency"]
    assert sources("Le bilan s'élève à 15 morts, a annoncé mardi le ministère de la Santé.") == ["ministère de la Santé"]
    assert sources("D'après le ministère, 42 personnes ont été arrêtées.") == ["ministère"]
    assert sources("L'OSDH a indiqué que ces frappes n'étaient pas les premières.") == ["OSDH"]
    assert sources("12 people died, he said. Unemployment is 3 per cent.") == []
    assert sources("Sudan: 2 million displaced since April, UN says") == ["UN"]  # "UN" is not the article "un"


def test_places_and_dates() -> None:
    text = (
        "Au moins 12 personnes ont été tuées lundi à Idleb. Strikes hit Kidal province on 3 April 2024 and the M6 near Plymouth."
    )
    assert [p.name for p in extract_places(text)] == ["Idleb", "Plymouth"]
    assert [d.text for d in extract_dates(text)] == ["lundi", "3 April 2024"]


def test_the_seed_report() -> None:
    text = SEED.read_text(encoding="utf-8") if SEED.exists() else ""
    if not text:
        pytest.skip("the seed report is not beside the tree")
    found = [(f.value, f.qualifier, f.what, f.attribution) for f in extract_figures(text, "en")]
    assert found[:2] == [(12, "at least", "killed", "NGO"), (12, "at least", "killed", "Syrian Observatory for Human Rights")]
    assert (8, None, "killed", "Observatory") in found and (3, "at least", "killed", "HTS") in found
    assert (500_000, None, "killed", None) in found  # the war's toll is a figure too; compare() takes each variant's first total
    assert all(f[0] not in (2020, 2011, 10, 3_000_000) for f in found)


def at(hours: int) -> datetime:
    return datetime(2024, 5, 1, 8, tzinfo=timezone.utc) + timedelta(hours=hours)


def test_compare_shows_where_variants_agree_and_differ() -> None:
    wire = "At least 12 people were killed in Idlib, according to the Syrian Observatory for Human Rights. HTS said 3 of its members were among the dead."
    variants = [
        ("Wire A", at(0), wire, "en"),
        ("Paper B", at(1), wire, "en"),
        ("Radio C", at(2), "Au moins 12 personnes ont été tuées, selon l'OSDH. Trente blessés.", "fr"),
        ("Local D", at(3), "The toll has risen to 15, local medics said, and 30 people were injured.", "en"),
    ]
    killed, injured = compare(variants)
    assert killed.what == "killed" and not killed.agree
    assert [(v.key, v.outlets) for v in killed.values] == [("12", ("Wire A", "Paper B", "Radio C")), ("15", ("Local D",))]
    assert killed.values[0].attributions == ("Syrian Observatory for Human Rights", "OSDH")
    assert killed.newest.key == "15"
    assert injured.agree and injured.values[0].outlets == ("Radio C", "Local D")
    assert summary_line([killed, injured]) == (
        "killed: 12 (Syrian Observatory for Human Rights, OSDH, 3 outlets) · 15 (local medics, 1 outlet); newest: 15"
        " | injured: 30 (local medics, 2 outlets)"  # the sentence names its source for both figures
    )


def test_figure_label() -> None:
    assert Figure(24, "dozens", "killed", "people", "dozens of people", 0, 16).label == "dozens"
    assert Figure(12, "at least", "killed", "people", "at least 12 people", 0, 18).label == "12"


def test_it_is_fast() -> None:
    text = (SEED.read_text(encoding="utf-8") if SEED.exists() else "At least 12 people were killed, the OSDH said. " * 45)[:2048]
    extract_figures(text)
    runs = 20
    start = time.perf_counter()
    for _ in range(runs):
        extract_figures(text)
    per_article_us = (time.perf_counter() - start) / runs * 1e6
    print(f"\nextract_figures: {per_article_us:.0f} µs per 2 KB article")
    assert per_article_us < 20_000  # ~1 ms on a quiet machine; the bound only catches a pathological regex


def test_precision_and_recall_on_the_labelled_sentences() -> None:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 120 and sum(r["lang"] == "fr" for r in rows) >= 40
    result = score_file(LABELLED)
    print()
    for kind in ("figures", "attributions", "places", "dates"):
        for part in ("all", "en", "fr", "heldout:en", "heldout:fr"):
            s = result[kind][part]
            print(f"{kind:13} {part:11} P={s['precision']:.3f} R={s['recall']:.3f} (tp {s['tp']}, fp {s['fp']}, fn {s['fn']})")
    # floors just under what the rules reach (figures P 1.00 R 1.00, attributions P 1.00 R 0.97;
    # held out, scored once before any change: figures R 0.76, attributions R 0.89)
    floors = {"figures": (0.95, 0.95), "attributions": (0.95, 0.92), "places": (0.90, 0.85), "dates": (0.95, 0.90)}
    for kind, (p, r) in floors.items():
        for part in ("en", "fr"):
            assert result[kind][part]["precision"] >= p, (kind, part, result[kind][part])
            assert result[kind][part]["recall"] >= r, (kind, part, result[kind][part])
