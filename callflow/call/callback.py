"""A "call me back" request: Asterisk calls the number, and the answered call is routed inbound."""

from __future__ import annotations

from dataclasses import dataclass

from callflow import contract
from callflow.ami import Ami, AmiError, AmiUrl
from callflow.config import Config, to_e164


class CallbackError(ValueError):
    """The callback cannot be placed (bad number, campaign, trunk, or AMI)."""


@dataclass(frozen=True)
class Callback:
    """A callback ready to originate: every part validated against the configuration."""

    number: str  # E.164
    campaign: str
    tracking_number: str  # the campaign's number: the DNIS the call is attributed to
    trunk: str

    @property
    def channel(self) -> str:
        """The dial string of the caller's phone, built from validated parts only."""
        return f"PJSIP/{self.number}@{self.trunk}"


def plan_callback(config: Config, *, number: str, campaign: str, trunk: str | None) -> Callback:
    """Validate a callback request against the rules file."""
    e164 = to_e164(number, config.settings.default_country)
    if e164 is None:
        raise CallbackError(f"not a phone number: {number!r}")
    if campaign not in config.campaigns:
        raise CallbackError(f"unknown campaign {campaign!r}")
    tracking = next((n.number for n in config.numbers if n.campaign == campaign), None)
    if tracking is None:
        raise CallbackError(f"campaign {campaign!r} has no tracking number to attribute calls to")
    if trunk is None:
        if len(config.trunks) != 1:
            raise CallbackError(f"say which trunk to call out on: {sorted(config.trunks)}")
        trunk = next(iter(config.trunks))
    elif trunk not in config.trunks:
        raise CallbackError(f"unknown trunk {trunk!r}")
    return Callback(e164, campaign, tracking, trunk)


async def request_callback(
    config: Config,
    ami_url: AmiUrl,
    *,
    number: str,
    campaign: str,
    trunk: str | None = None,
    timeout: float = 30.0,
) -> Callback:
    """Originate the callback over AMI; when answered it enters [callflow-inbound]."""
    plan = plan_callback(config, number=number, campaign=campaign, trunk=trunk)
    ami = Ami(ami_url)
    try:
        await ami.start()
        await ami.originate(
            channel=plan.channel,
            context=contract.CONTEXT_INBOUND,
            exten=plan.tracking_number,
            callerid=f'"callback" <{plan.number}>',
            variables={contract.VAR_CALLBACK: "1"},
            timeout=timeout,
        )
    except AmiError as exc:
        raise CallbackError(str(exc)) from exc
    finally:
        await ami.stop()
    return plan
