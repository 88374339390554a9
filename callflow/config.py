"""The callflow configuration: a YAML file parsed into validated, frozen pydantic models.

Every dial string is built from this file alone, after each endpoint, trunk and PSTN number has
passed a strict pattern, so nothing a caller sends can ever reach a dial string. Errors name the
file and line of every problem (``rules/callflow.yaml:12: targets.alice.endpoint: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import phonenumbers
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

__all__ = [
    "DEFAULT_COUNTRY",
    "DEFAULT_RING_TIMEOUT",
    "Campaign",
    "Config",
    "ConfigError",
    "Settings",
    "Target",
    "TrackingNumber",
    "Trunk",
    "UnknownNumber",
    "load_config",
    "parse_config",
    "to_e164",
]

DEFAULT_COUNTRY = "US"
DEFAULT_RING_TIMEOUT = 20

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_E164_RE = re.compile(r"\+[1-9][0-9]{6,14}\Z")
# What a sysadmin may write as a phone number before normalisation: digits and punctuation only.
_WRITTEN_NUMBER_RE = re.compile(r"\+?[0-9(][0-9 ().-]{0,30}\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_DIGITS = 20
_MAX_TEXT = 200

#: A location in the configuration, as pydantic gives it: keys and list indexes.
Loc = tuple[str | int, ...]


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` holds one ``file:line: ...`` each."""

    def __init__(self, problems: list[str]) -> None:
        """Keep the list of problems and join them as the message."""
        self.problems = problems
        super().__init__("\n".join(problems))


# --- phone numbers ----------------------------------------------------------------------------


def to_e164(text: str, default_country: str = DEFAULT_COUNTRY) -> str | None:
    """Return the E.164 form of a phone number (non-digits ignored), or None if it is not one."""
    digits = "".join(ch for ch in text if "0" <= ch <= "9")
    if not digits or len(digits) > _MAX_DIGITS:
        return None
    plus = text.lstrip().startswith("+")
    try:
        number = phonenumbers.parse(("+" if plus else "") + digits, default_country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 if _E164_RE.match(e164) else None


def _normalise_written(value: object, default_country: str) -> object:
    """Return a number as written in the file in E.164, or unchanged for the validator to reject."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _WRITTEN_NUMBER_RE.match(value):
        return value
    return to_e164(value, default_country) or value


# --- field types ------------------------------------------------------------------------------


def _int_to_str(value: object) -> object:
    """Accept a YAML integer where a string is meant (``endpoint: 1001``, ``ad: 17``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _no_bool(value: object) -> object:
    """Refuse ``true``/``false`` where a number is meant (pydantic would read them as 1/0)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    return value


def _check_name(value: str) -> str:
    """Accept a target, campaign or trunk name that is safe anywhere (dial strings included)."""
    if not _NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a valid name (letters, digits, '_', '.', '-'; 1-64)")
    return value


def _check_endpoint(value: str) -> str:
    """Accept a PJSIP endpoint name that is safe inside a dial string."""
    if not _NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a valid endpoint name")
    return value


def _check_e164(value: str) -> str:
    """Accept an E.164 phone number (``+`` and 7 to 15 digits)."""
    if not _E164_RE.match(value):
        raise ValueError(f"{value!r} is not a valid phone number")
    return value


def _check_text(value: str) -> str:
    """Accept free text (campaign labels) without control characters."""
    if _CONTROL_RE.search(value):
        raise ValueError(f"{value!r} contains control characters")
    return value


def _check_region(value: str) -> str:
    """Accept an ISO 3166 alpha-2 region that phonenumbers knows, in upper case."""
    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a known country code (ISO 3166 alpha-2, e.g. US)")
    return region


Name = Annotated[str, BeforeValidator(_int_to_str), AfterValidator(_check_name)]
Endpoint = Annotated[str, BeforeValidator(_int_to_str), AfterValidator(_check_endpoint)]
E164 = Annotated[str, AfterValidator(_check_e164)]
Text = Annotated[
    str, BeforeValidator(_int_to_str), Field(max_length=_MAX_TEXT), AfterValidator(_check_text)
]
RingTimeout = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=600)]


class _Model(BaseModel):
    """Base of every configuration model: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the models -------------------------------------------------------------------------------


class Settings(_Model):
    """Global settings."""

    default_country: Annotated[str, AfterValidator(_check_region)] = DEFAULT_COUNTRY
    repeat_window_days: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=3650)] = 7
    ring_timeout: RingTimeout = DEFAULT_RING_TIMEOUT


class Trunk(_Model):
    """An outbound trunk: the key is its PJSIP endpoint name."""

    name: Endpoint


class Target(_Model):
    """A destination to ring: a SIP endpoint, or a PSTN number through a trunk."""

    name: Name
    endpoint: Endpoint | None = None
    number: E164 | None = None
    trunk: Endpoint | None = None
    ring_timeout: RingTimeout = DEFAULT_RING_TIMEOUT

    @model_validator(mode="after")
    def _one_kind(self) -> Target:
        """Require exactly one of ``endpoint`` or ``number`` + ``trunk``."""
        pstn = self.number is not None or self.trunk is not None
        if self.endpoint is not None and pstn:
            raise ValueError("give either 'endpoint' or 'number' + 'trunk', not both")
        if self.endpoint is None and not pstn:
            raise ValueError("needs 'endpoint' (a SIP endpoint) or 'number' + 'trunk' (PSTN)")
        if pstn and (self.number is None or self.trunk is None):
            raise ValueError("a PSTN target needs both 'number' and 'trunk'")
        return self

    @property
    def dial_string(self) -> str:
        """The Asterisk dial string: ``PJSIP/<endpoint>`` or ``PJSIP/<number>@<trunk>``."""
        if self.endpoint is not None:
            return f"PJSIP/{self.endpoint}"
        return f"PJSIP/{self.number}@{self.trunk}"


class Campaign(_Model):
    """A marketing campaign: attribution labels and the ordered targets to ring."""

    name: Name
    source: Text | None = None
    medium: Text | None = None
    keyword: Text | None = None
    ad: Text | None = None
    route: tuple[Name, ...] = Field(min_length=1)


class TrackingNumber(_Model):
    """A tracking number (DNIS) with its campaign and optional per-number attribution."""

    number: E164
    original: str = ""
    campaign: Name
    source: Text | None = None
    medium: Text | None = None
    keyword: Text | None = None
    ad: Text | None = None


class UnknownNumber(_Model):
    """Where a call to a number not listed in ``numbers`` goes."""

    campaign: Name


class Config(_Model):
    """The whole configuration file."""

    version: Annotated[Literal[1], BeforeValidator(_no_bool)]
    settings: Settings = Settings()
    trunks: Mapping[Name, Trunk] = {}
    targets: Mapping[Name, Target] = {}
    campaigns: Mapping[Name, Campaign]
    numbers: tuple[TrackingNumber, ...] = ()
    unknown_number: UnknownNumber

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Fill names from keys, default ring timeouts, and normalise phone numbers."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
        country = _raw_country(settings)
        timeout = _raw_ring_timeout(settings)
        if data.get("settings") is None:
            data.pop("settings", None)
        for section in ("trunks", "targets", "campaigns"):
            if section in data:
                data[section] = _named(data[section])
        if isinstance(data.get("targets"), dict):
            data["targets"] = {
                k: _prepare_target(v, timeout, country) for k, v in data["targets"].items()
            }
        if isinstance(data.get("numbers"), list):
            data["numbers"] = [_prepare_number(v, country) for v in data["numbers"]]
        return data

    @model_validator(mode="after")
    def _references(self) -> Config:
        """Check that every name refers to something defined, and numbers are unique."""
        problems = list(self._reference_problems())
        if problems:
            detail = "; ".join(f"{_format_loc(loc)}: {msg}" for loc, msg in problems)
            raise PydanticCustomError(
                "config_reference", "{detail}", {"detail": detail, "problems": tuple(problems)}
            )
        return self

    def _reference_problems(self) -> Iterator[tuple[Loc, str]]:
        """Yield (location, message) for each dangling reference or duplicate."""
        yield from self._name_problems()
        for key, target in self.targets.items():
            if target.trunk is not None and target.trunk not in self.trunks:
                yield ("targets", key, "trunk"), f"unknown trunk {target.trunk!r}"
        for key, campaign in self.campaigns.items():
            for i, name in enumerate(campaign.route):
                if name not in self.targets:
                    yield ("campaigns", key, "route", i), f"unknown target {name!r}"
        yield from self._number_problems()
        if self.unknown_number.campaign not in self.campaigns:
            name = self.unknown_number.campaign
            yield ("unknown_number", "campaign"), f"unknown campaign {name!r}"

    def _name_problems(self) -> Iterator[tuple[Loc, str]]:
        """Yield a problem for each entry whose ``name`` was written and differs from its key."""
        for section in ("trunks", "targets", "campaigns"):
            for key, item in getattr(self, section).items():
                if item.name != key:
                    yield (section, key, "name"), "remove 'name': the name is the key"

    def _number_problems(self) -> Iterator[tuple[Loc, str]]:
        """Yield a problem for each tracking number of an unknown campaign, or listed twice."""
        seen: dict[str, int] = {}
        for i, number in enumerate(self.numbers):
            if number.campaign not in self.campaigns:
                yield ("numbers", i, "campaign"), f"unknown campaign {number.campaign!r}"
            if number.number in seen:
                first = _format_loc(("numbers", seen[number.number]))
                message = f"duplicate tracking number {number.number} (also {first})"
                yield ("numbers", i, "number"), message
            seen.setdefault(number.number, i)

    def route_targets(self, campaign: str) -> tuple[Target, ...]:
        """Return the targets a campaign rings, in order."""
        return tuple(self.targets[name] for name in self.campaigns[campaign].route)


def _raw_country(settings: dict[Any, Any]) -> str:
    """Return the default country as written if usable, else the built-in default."""
    value = settings.get("default_country", DEFAULT_COUNTRY)
    if isinstance(value, str) and value.upper() in phonenumbers.SUPPORTED_REGIONS:
        return value.upper()
    return DEFAULT_COUNTRY


def _raw_ring_timeout(settings: dict[Any, Any]) -> int:
    """Return the default ring timeout as written if usable, else the built-in default."""
    value = settings.get("ring_timeout", DEFAULT_RING_TIMEOUT)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 600:
        return value
    return DEFAULT_RING_TIMEOUT


def _named(section: object) -> object:
    """Give each mapping entry of a keyed section its ``name`` (an empty entry is ``{}``)."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        return section
    named: dict[Any, Any] = {}
    for key, value in section.items():
        item = {} if value is None else value
        if isinstance(item, dict):
            item = {"name": key, **item}
        named[key] = item
    return named


def _prepare_target(value: object, timeout: int, country: str) -> object:
    """Default a target's ring timeout and normalise its PSTN number."""
    if not isinstance(value, dict):
        return value
    value = {"ring_timeout": timeout, **value}
    if "number" in value:
        value["number"] = _normalise_written(value["number"], country)
    return value


def _prepare_number(value: object, country: str) -> object:
    """Normalise a tracking number to E.164, keeping what was written in ``original``."""
    if not isinstance(value, dict) or "number" not in value:
        return value
    written = value["number"]
    prepared = {**value, "number": _normalise_written(written, country)}
    if isinstance(written, (str, int)) and not isinstance(written, bool):
        prepared.setdefault("original", str(written))
    return prepared


# --- YAML with line numbers -------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """A YAML loader without YAML 1.1 surprises (``NO`` as false, ``0123`` as octal, dates)."""


_Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"(?:true|True|TRUE|false|False|FALSE)\Z", "tTfF"),
    ("tag:yaml.org,2002:null", r"(?:~|null|Null|NULL|)\Z", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"-?(?:0|[1-9][0-9]*)\Z", "-0123456789"),
    ("tag:yaml.org,2002:float", r"-?(?:0|[1-9][0-9]*)\.[0-9]+\Z", "-0123456789"),
    ("tag:yaml.org,2002:merge", r"<<\Z", "<"),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _compose(text: str, filename: str) -> tuple[yaml.Node | None, Any]:
    """Parse YAML into its node tree (for line numbers) and its Python data."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # a character YAML does not allow
        raise ConfigError([_yaml_problem(exc, text, filename)]) from None
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc, text, filename)]) from None
    finally:
        loader.dispose()
    return node, data


def _yaml_problem(exc: yaml.YAMLError, text: str, filename: str) -> str:
    """Describe a YAML error as ``file:line: YAML syntax error: ...``."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        problem = f"character {shown} is not allowed"
    else:
        line, problem = 1, str(exc)
    return f"{filename}:{line}: YAML syntax error: {problem}"


def _duplicate_keys(node: yaml.Node | None) -> Iterator[tuple[int, str]]:
    """Yield (line, message) for each key written twice in one mapping."""
    stack, visited = [node], set()
    while stack:
        current = stack.pop()
        if current is None or id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                name = str(key.value)
                if isinstance(key, yaml.ScalarNode) and name != "<<":
                    if name in seen:
                        yield key.start_mark.line + 1, f"duplicate key {name!r}"
                    seen.add(name)
                stack.extend((key, value))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _line_of(root: yaml.Node | None, loc: Loc) -> int:
    """Return the line of the deepest node found along a pydantic location."""
    line = 1 if root is None else root.start_mark.line + 1
    node = root
    for part in loc:
        if part == "[key]":
            break
        found = _child(node, part)
        if found is None:
            break
        line, node = found
    return line


def _child(node: yaml.Node | None, part: str | int) -> tuple[int, yaml.Node] | None:
    """Return (line of the key or item, value node) of one step into a mapping or sequence."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key.start_mark.line + 1, value
    elif (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


def _format_loc(loc: Loc) -> str:
    """Render a location as ``targets.alice.endpoint`` or ``numbers[0].campaign``."""
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


_FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "dict_type": "must be a mapping (key: value)",
    "tuple_type": "must be a list",
    "literal_error": "must be 1 (the only format version)",
}


def _messages(error: ErrorDetails) -> Iterator[tuple[Loc, str]]:
    """Turn one pydantic error into (location, message) pairs."""
    ctx = error.get("ctx") or {}
    if error["type"] == "config_reference":
        yield from ctx["problems"]
        return
    message = _FRIENDLY.get(error["type"], error["msg"])
    message = message.removeprefix("Value error, ")
    yield tuple(error["loc"]), message


def _validation_problems(exc: ValidationError, root: yaml.Node | None) -> list[tuple[int, str]]:
    """Map pydantic errors to (line, ``path: message``) pairs."""
    problems = []
    for error in exc.errors():
        for loc, message in _messages(error):
            problems.append((_line_of(root, loc), f"{_format_loc(loc)}: {message}"))
    return problems


def parse_config(text: str, filename: str = "<config>") -> Config:
    """Parse and validate configuration text; raise ConfigError listing every ``file:line``."""
    root, data = _compose(text, filename)
    problems = list(_duplicate_keys(root))
    if not isinstance(data, dict):
        problems.append((1, "the file must be a mapping with version, targets, campaigns, ..."))
    else:
        try:
            config = Config.model_validate(data)
        except ValidationError as exc:
            problems.extend(_validation_problems(exc, root))
    if problems:
        problems.sort(key=lambda problem: problem[0])
        raise ConfigError([f"{filename}:{line}: {message}" for line, message in problems])
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a configuration file; raise ConfigError on any problem."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    return parse_config(text, str(path))
