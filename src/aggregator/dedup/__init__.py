"""Which story an article joins, and which variant of a story is canonical. No I/O.

Two tiers of sameness:

* **copy**: the same text republished (wire reprints, syndication, section feeds). MinHash over
  word 3-shingles of the body, minus the outlet's boilerplate shingles; MinHash LSH proposes
  candidates; a copy is an estimated Jaccard >= ``copy_jaccard`` or an estimated containment of
  the smaller text >= ``copy_containment`` (a trimmed reprint still counts).
* **report**: an independent write-up of the same event. Weighted term vectors (tf-idf, title
  words twice, numbers 1.5x, light stemming); candidates from an inverted index over each
  article's rarest terms; each candidate *story* scored as a whole, with crowding, a time decay
  learned from the stream and a margin over the runner-up story (see ``rule``).

The modules, one job each:

========================  ========================================================================
``tokens``                text to terms: normalising, tokenising, stemming, weighted counts
``hashing``               shingle hashes, MinHash (affine32), LSH bands and band keys
``signature``             ``Signature``, its stored byte layout and the bulk decoder
``statistics``            document frequencies, boilerplate counts, learned decay, snapshot
``postings``              the compact multimap the window's indexes are made of
``index``                 the window: column rows, multimaps, stories, eviction, restore
``rule``                  scoring an article against stories, and the join decision
``canonical``             which member is canonical; member kinds relative to it (pure)
``batch``                 undated articles that arrive together
``deduplicator``          ``Deduplicator`` composing them; ``Placement``
========================  ========================================================================
"""

from .canonical import NEW_ARTICLE, MemberUpdate, Settlement, choose_canonical
from .deduplicator import Deduplicator, Placement
from .rule import Decision, DecisionKind
from .signature import Signature
from .tokens import normalize, words

RESTORE_BATCH = 8192  # stored signatures decoded and indexed together at startup

__all__ = [
    "NEW_ARTICLE",
    "RESTORE_BATCH",
    "Decision",
    "DecisionKind",
    "Deduplicator",
    "MemberUpdate",
    "Placement",
    "Settlement",
    "Signature",
    "choose_canonical",
    "normalize",
    "words",
]
