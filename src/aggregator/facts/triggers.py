"""What a number counts: the trigger words and phrases, English and French, that make it a count of
the killed, injured, missing, displaced, arrested, kidnapped, evacuated or rescued ("killed",
"morts", "lost their lives", "garde à vue"); the verbs that take the count after them ("killing
12"), the tolls that give it before ("the death toll rose to 15"), and the words that end a counted
noun phrase or a clause."""

from __future__ import annotations

from .numbers import _Tok

_TRIGGERS: dict[str, str] = {}
for _cat, _words in {
    "killed": "killed kill kills killing dead died die dies deaths fatalities perished perish slain abattu abattus abattue abattues "
    "tué tués tuée tuées tue tuent tuant mort morts morte mortes décès décédé décédés décédée décédées péri périssent périt tués",
    "injured": "injured injuring injures injure injuries wounded wounding wounds wound hurt hospitalised hospitalized "
    "blessé blessés blessée blessées blessant hospitalisé hospitalisés hospitalisée hospitalisées",
    "missing": "missing disparu disparus disparue disparues introuvables",
    "displaced": "displaced displaces homeless fled flee fleeing déplacé déplacés déplacée déplacées fui fuir fuient",
    "arrested": "arrested arresting arrests arrest detained detaining detains detain nab nabbed nabs "
    "interpellé interpellés interpellée interpellées interpellations arrêté arrêtés arrêtée arrêtées arrestations",
    "kidnapped": "kidnapped abducted abducting abducts kidnaps kidnapping abduct enlevé enlevés enlevée enlevées enlève kidnappé kidnappés",
    "evacuated": "evacuated evacuating evacuates évacué évacués évacuée évacuées évacue",
    "rescued": "rescued rescuing rescues secouru secourus secourue secourues secourt sauvé sauvés sauvée sauvées",
}.items():
    for _w in _words.split():
        _TRIGGERS[_w] = _cat
_PHRASE_TRIGGERS = [  # (tokens, category)
    (("lost", "their", "lives"), "killed"), (("lost", "his", "life"), "killed"), (("lost", "her", "life"), "killed"),
    (("perdu", "la", "vie"), "killed"), (("shot", "dead"), "killed"), (("unaccounted", "for"), "missing"),
    (("taken", "to", "hospital"), "injured"), (("treated", "at", "the", "scene"), "injured"),
    (("garde", "à", "vue"), "arrested"), (("gardes", "à", "vue"), "arrested"), (("forced", "from"), "displaced"),
    (("taken", "into", "custody"), "arrested"), (("among", "the", "dead"), "killed"), (("parmi", "les", "morts"), "killed"),
    (("gunned", "down"), "killed"), (("treated", "for"), "injured"), (("soignés", "pour"), "injured"),
    (("among", "the", "injured"), "injured"), (("among", "the", "wounded"), "injured"), (("parmi", "les", "blessés"), "injured"),
]  # fmt: skip
# Transitive verbs right before the number ("killing 12", "a interpellé 23 personnes").
_LEFT_VERBS = {w: c for w, c in _TRIGGERS.items() if c != "displaced"} | {"displacing": "displaced", "forcing": "displaced"}
for _noun in (
    "dead",
    "deaths",
    "fatalities",
    "injuries",
    "mort",
    "morts",
    "morte",
    "mortes",
    "décès",
    "interpellations",
    "arrestations",
    "homeless",
):
    _LEFT_VERBS.pop(_noun, None)
_TOLL_WORDS = {"toll", "bilan"}
_TOLL_PHRASES = [
    ("number", "of", "dead"),
    ("number", "of", "deaths"),
    ("nombre", "de", "morts"),
    ("among", "the", "dead"),
    ("parmi", "les", "morts"),
]
_PEOPLE = {
    "people", "persons", "person", "civilians", "children", "soldiers", "fighters", "combatants", "members", "others", "residents",
    "migrants", "men", "women", "students", "protesters", "police", "officers", "passengers", "workers",
    "personnes", "personne", "civils", "enfants", "soldats", "combattants", "membres", "autres", "habitants",
    "hommes", "femmes", "élèves", "manifestants", "policiers", "passagers", "ouvriers",
}  # fmt: skip
_CLAUSE_STOP = {
    ".",
    ";",
    ":",
    "!",
    "?",
    "(",
    ")",
    "«",
    "»",
    '"',
    "“",
    "”",
    "but",
    "mais",
    "while",
    "tandis",
    "said",
    "says",
    "selon",
    "according",
}
_CONJ = {"and", "et", "or", "ou", "as", "well", "ainsi", "que", "plus"}
_PAREN_START = {"including", "among", "dont", "parmi", "notamment", "mostly", "mainly", "aged", "âgés", "âgées", "âgé", "âgée",
                "most", "pour", "majoritairement", "all", "tous", "toutes"}  # fmt: skip


def _trigger_at(toks: list[_Tok], i: int) -> tuple[str, int] | None:
    """The category of a trigger starting at token ``i``, and the index after it."""
    if i >= len(toks):
        return None
    low = toks[i].low
    for phrase, cat in _PHRASE_TRIGGERS:
        if low == phrase[0] and tuple(t.low for t in toks[i : i + len(phrase)]) == phrase:
            return cat, i + len(phrase)
    found = _TRIGGERS.get(low)
    if found is None:
        return None
    if (
        low in ("die", "dies", "mort", "morte", "fui", "hurt", "dead")
        and i > 0
        and toks[i - 1].low in ("the", "la", "le", "of", "de")
    ):
        return None  # "the dead" as a noun phrase is handled by the toll phrases
    return found, i + 1


def _ends_with(toks: list[_Tok], end: int, phrase: tuple[str, ...]) -> bool:
    k = len(phrase)
    return end - k >= 0 and tuple(t.low for t in toks[end - k : end]) == phrase


_STOP_NP = {
    "were", "was", "are", "is", "have", "has", "had", "been", "be", "will", "would", "may", "might", "could", "remain", "remains",
    "ont", "sont", "a", "avaient", "avait", "été", "est", "étaient", "seraient", "sera", "restent", "reste",
    "in", "on", "at", "from", "after", "near", "during", "and", "et", "who", "qui", "that", "including", "dont", "with",
    "dans", "à", "lors", "après", "près", "en", "sur", "to", "when", "as", "by", "par", "for", "pour", "since", "depuis",
    "still", "toujours", "reportedly", "feared", "believed", "said", "say", "says", "aged", "âgés", "âgées", "âgé", "âgée",
}  # fmt: skip
