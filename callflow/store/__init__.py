"""Exact CDRs in SQLite: records, the single batched writer, read-only reports, exports."""

from callflow.store.errors import (
    AmbiguousUniqueid,
    RowRejected,
    SchemaError,
    SchemaTooNew,
    StoreClosed,
    StoreError,
    UnknownCall,
)
from callflow.store.export import export_calls
from callflow.store.migrations import SCHEMA_VERSION
from callflow.store.reader import CdrReader
from callflow.store.records import (
    ABANDONED,
    ANSWERED,
    BUSY,
    DISPOSITIONS,
    FAILED,
    NO_ANSWER,
    REJECTED,
    STATUS_COMPLETED,
    STATUS_IN_PROGRESS,
    STATUS_UNKNOWN,
    UNKNOWN,
    CallEnd,
    CallStart,
    DialAttempt,
)
from callflow.store.writer import CdrStore

__all__ = [
    "ABANDONED",
    "ANSWERED",
    "BUSY",
    "DISPOSITIONS",
    "FAILED",
    "NO_ANSWER",
    "REJECTED",
    "SCHEMA_VERSION",
    "STATUS_COMPLETED",
    "STATUS_IN_PROGRESS",
    "STATUS_UNKNOWN",
    "UNKNOWN",
    "AmbiguousUniqueid",
    "CallEnd",
    "CallStart",
    "CdrReader",
    "CdrStore",
    "DialAttempt",
    "RowRejected",
    "SchemaError",
    "SchemaTooNew",
    "StoreClosed",
    "StoreError",
    "UnknownCall",
    "export_calls",
]
