"""A feed's answer as a worker leaves it in the inbox (``ingest.FeedBatch``: the feed's state as the
worker read it, the new and changed entries with their chosen text, the feed's next state) and as the
clusterer reads it back: JSON through the records' own types (pydantic), compressed. The feed's
parsed entries travel only as candidates: the batch keeps the feed's title and site, not its items.
"""

from __future__ import annotations

import dataclasses
import zlib
from functools import cache

from pydantic import TypeAdapter, ValidationError

from ..errors import StorageError
from ..ingest import FeedBatch

LEVEL = 1  # zlib: fast; article text still shrinks about 3x


@cache
def _adapter() -> TypeAdapter[FeedBatch]:
    return TypeAdapter(FeedBatch)


def encode_batch(batch: FeedBatch) -> bytes:
    """The answer as inbox bytes (its parsed entries left out: the candidates carry them)."""
    slim = dataclasses.replace(batch, parsed=dataclasses.replace(batch.parsed, entries=()), candidates=list(batch.candidates))
    return zlib.compress(_adapter().dump_json(slim), LEVEL)


def decode_batch(data: bytes) -> FeedBatch:
    """An answer from the inbox (``StorageError`` if the bytes are not one: a newer worker's format)."""
    try:
        return _adapter().validate_json(zlib.decompress(data))
    except (zlib.error, ValidationError) as exc:
        raise StorageError(f"an inbox answer cannot be read (a worker of another version?): {exc}") from None
