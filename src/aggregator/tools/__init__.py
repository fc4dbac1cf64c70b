"""Tools around the product, not part of it: the demo and its corpus, ``eval`` and its scoring,
the wire-copy generator, and the loopback feed server the demo and the tests serve feeds with.
Imported only by the commands that use them (``demo``, ``eval``), the tests and the benchmarks."""
