"""Pay per call: who bills and who is paid for each call, exactly, with an append-only ledger.

Pure: ``assess`` (a finished call → an ``Assessment`` with its reasons), ``BillingConfig``
(buyers and publishers compiled, amounts in minor units), ``BillingState`` (cap reservations,
period totals, duplicate memory; synchronous, so exact under asyncio). Storage: ``post``,
``adjust``, ``statement``, ``call_money``, ``load_state`` over the CDR database's ``ledger``.
"""

from callflow.billing.assess import (
    Assessment,
    BillableCall,
    DuplicateHistory,
    NoHistory,
    PayoutCaps,
    PriorConversion,
    assess,
)
from callflow.billing.ledger import (
    LedgerEntry,
    LedgerError,
    Statement,
    StatementLine,
    adjust,
    call_money,
    entries_of,
    load_state,
    open_ledger,
    post,
    statement,
)
from callflow.billing.model import BillingConfig, BuyerPlan, CapRule, PublisherPlan
from callflow.billing.money import format_money, parse_money, percent_of, to_minor
from callflow.billing.state import BillingState, SettledEntry

__all__ = [
    "Assessment",
    "BillableCall",
    "BillingConfig",
    "BillingState",
    "BuyerPlan",
    "CapRule",
    "DuplicateHistory",
    "LedgerEntry",
    "LedgerError",
    "NoHistory",
    "PayoutCaps",
    "PriorConversion",
    "PublisherPlan",
    "SettledEntry",
    "Statement",
    "StatementLine",
    "adjust",
    "assess",
    "call_money",
    "entries_of",
    "format_money",
    "load_state",
    "open_ledger",
    "parse_money",
    "percent_of",
    "post",
    "statement",
    "to_minor",
]
