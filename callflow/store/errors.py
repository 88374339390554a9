"""Exceptions raised by the CDR store."""

from __future__ import annotations

__all__ = [
    "AmbiguousUniqueid",
    "RowRejected",
    "SchemaError",
    "SchemaTooNew",
    "StoreClosed",
    "StoreError",
    "UnknownCall",
]


class StoreError(Exception):
    """Base class of every CDR store error."""


class SchemaError(StoreError):
    """The database file is not a callflow CDR database this code can use."""


class SchemaTooNew(SchemaError):
    """The database was written by a newer callflow (its schema version is unknown here)."""


class StoreClosed(StoreError):
    """The store is closed (or its writer has died) and accepts no more writes."""


class RowRejected(StoreError):
    """SQLite refused one row of a batch (the cause is chained); the other rows were kept."""


class UnknownCall(RowRejected):
    """A call was finished that is not in progress: never started, or finished already."""


class AmbiguousUniqueid(StoreError, LookupError):
    """A uniqueid prefix matches more than one call."""
