"""The caller directory: known numbers (name, company, account) imported from CSV."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from callflow.config import to_e164

# CSV columns (header names, case-insensitive); only "number" is required.
COLUMNS = ("number", "name", "company", "address", "account_id", "tags")
_ALIASES = {
    "phone": "number",
    "e164": "number",
    "account": "account_id",
    "account id": "account_id",
}
_MAX_FIELD = 256


@dataclass(frozen=True, slots=True)
class Contact:
    """One known caller."""

    e164: str
    name: str | None = None
    company: str | None = None
    address: str | None = None
    account_id: str | None = None
    tags: str | None = None  # comma-separated


@dataclass
class ImportReport:
    """What an import did: rows imported, and each rejected row with its line and reason."""

    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class DirectoryError(ValueError):
    """The CSV cannot be imported at all (no header, no number column)."""


def parse_csv(text: str, default_country: str = "US") -> tuple[list[Contact], ImportReport]:
    """Read contacts from CSV text; bad rows are reported by line and skipped."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise DirectoryError("empty CSV: the first line must name the columns") from None
    names = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    if "number" not in names:
        raise DirectoryError(f"no 'number' column in the header: {header}")
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise DirectoryError(f"unknown columns {unknown}; known: {', '.join(COLUMNS)}")
    report = ImportReport()
    contacts: dict[str, Contact] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            report.rejected.append((line, f"{len(row)} fields, the header has {len(names)}"))
            continue
        values = dict(zip(names, (cell.strip() for cell in row), strict=False))
        raw = values.get("number", "")
        e164 = to_e164(raw, default_country) if raw else None
        if e164 is None:
            report.rejected.append((line, f"not a phone number: {raw!r}"))
            continue
        too_long = [k for k, v in values.items() if len(v) > _MAX_FIELD]
        if too_long:
            report.rejected.append((line, f"field {too_long[0]} longer than {_MAX_FIELD}"))
            continue
        tags = ",".join(t.strip() for t in values.get("tags", "").split(",") if t.strip())
        contacts[e164] = Contact(
            e164=e164,
            name=values.get("name") or None,
            company=values.get("company") or None,
            address=values.get("address") or None,
            account_id=values.get("account_id") or None,
            tags=tags or None,
        )
    report.imported = len(contacts)
    return list(contacts.values()), report


def save(db: Path, contacts: Iterable[Contact], *, replace: bool = False) -> None:
    """Write contacts into the CDR database's directory (one transaction)."""
    now = time.time()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA busy_timeout = 5000")
        if replace:
            conn.execute("DELETE FROM directory")
        conn.executemany(
            "INSERT INTO directory (e164, name, company, address, account_id, tags, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (e164) DO UPDATE SET name = excluded.name, "
            "company = excluded.company, address = excluded.address, "
            "account_id = excluded.account_id, tags = excluded.tags, "
            "updated_at = excluded.updated_at",
            [(c.e164, c.name, c.company, c.address, c.account_id, c.tags, now) for c in contacts],
        )
    conn.close()


def load(db: Path) -> dict[str, Contact]:
    """Every contact, by E.164 number (the daemon keeps this in memory)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT e164, name, company, address, account_id, tags FROM directory"
        ).fetchall()
    conn.close()
    return {row[0]: Contact(*row) for row in rows}


_UNKNOWN_CONTACT: Mapping[str, str | None] = MappingProxyType(
    {"contact_name": None, "company": None, "account_id": None, "contact_tags": None}
)


def contact_fields(contact: Contact | None) -> Mapping[str, str | None]:
    """The CDR fields a contact fills (all None for an unknown caller)."""
    if contact is None:
        return _UNKNOWN_CONTACT
    return {
        "contact_name": contact.name,
        "company": contact.company,
        "account_id": contact.account_id,
        "contact_tags": contact.tags,
    }
