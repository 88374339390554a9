"""IVR over FastAGI: play a menu and collect its digits; collect and check a US ZIP code."""

from __future__ import annotations

from dataclasses import dataclass

import zipcodes

from callflow.agi import AgiSession
from callflow.config import IvrMenu
from callflow.rules import CallFacts

ZIP_DIGITS = 5
ZIP_TIMEOUT_MS = 6000


async def answer_once(session: AgiSession, answered: list[bool]) -> None:
    """Answer the caller's channel the first time something is played to it."""
    if not answered[0]:
        await session.answer()
        answered[0] = True


async def run_menu(session: AgiSession, menu: IvrMenu, answered: list[bool]) -> str:
    """Play the menu until a valid choice or the retries run out; return what was entered.

    A menu with an `invalid` or `timeout` branch returns the bad entry (or "") at once so the
    engine can take that branch; a menu without one ("repeat") asks again while retries last.
    """
    await answer_once(session, answered)
    entered = ""
    for _ in range(menu.retries + 1):
        entered, _timed_out = await session.get_data(
            menu.prompt, menu.digit_timeout * 1000, menu.max_digits
        )
        if menu.accepts(entered):
            return entered
        branch = menu.timeout if not entered else menu.invalid
        if branch is not None:
            return entered
    return entered


@dataclass(frozen=True)
class Zip:
    """A ZIP code entered by the caller, with its place when it is a real one."""

    digits: str
    city: str | None
    state: str | None

    @property
    def valid(self) -> bool:
        """Whether the offline ZIP data knows it."""
        return self.state is not None


def lookup_zip(digits: str) -> Zip:
    """Check five digits against the offline US ZIP data (the zipcodes package)."""
    if len(digits) != ZIP_DIGITS or not digits.isdigit():
        return Zip(digits, None, None)
    try:
        found = zipcodes.matching(digits)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError):
        found = []
    if not found:
        return Zip(digits, None, None)
    return Zip(digits, str(found[0].get("city") or "") or None, found[0].get("state"))


async def collect_zip(session: AgiSession, prompt: str, retries: int, answered: list[bool]) -> Zip:
    """Ask for a ZIP code until a real one is entered or the retries run out."""
    await answer_once(session, answered)
    entered = Zip("", None, None)
    for _ in range(retries + 1):
        digits, _timed_out = await session.get_data(prompt, ZIP_TIMEOUT_MS, ZIP_DIGITS)
        entered = lookup_zip(digits)
        if entered.valid:
            return entered
    return entered


def with_zip(facts: CallFacts, entered: Zip) -> CallFacts:
    """The facts after the ZIP collector."""
    if entered.valid:
        return facts.with_zip(entered.digits, city=entered.city, state=entered.state)
    return facts.without_zip(entered.digits)
