"""The bundled demo corpus keeps the shape the demo and its traps rely on."""

from demo_corpus_check import DEFAULT_PATH, check


def test_demo_corpus_is_well_formed():
    check(DEFAULT_PATH)  # raises AssertionError/SystemExit naming the first problem
