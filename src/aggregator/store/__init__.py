"""The database: the only package that writes SQL (or imports SQLAlchemy).

The rest of the program uses ``StoreProtocol``: ``Store(url)`` opens (creating or migrating
the schema), ``with store.transaction() as tx:`` lends a ``Transaction`` whose writes commit
together, ``with store.reading() as r:`` a ``Reading`` for several reads on one connection.

Modules: ``interface`` (records and protocols), ``schema`` (tables, migrations, pragmas),
``feeds``, ``articles`` and ``stories`` (the queries), ``database`` (``Store`` and the objects
it lends).
"""

from .database import Reading, Store, Transaction, shown, sqlite_file
from .interface import (
    Correction,
    Joined,
    MemberFacts,
    ReadProtocol,
    Regrouped,
    StoredSignature,
    StoreProtocol,
    TransactionProtocol,
)
from .schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "Correction",
    "Joined",
    "MemberFacts",
    "ReadProtocol",
    "Reading",
    "Regrouped",
    "Store",
    "StoreProtocol",
    "StoredSignature",
    "Transaction",
    "TransactionProtocol",
    "shown",
    "sqlite_file",
]
