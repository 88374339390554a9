"""Tests for the rules file: loading, validation errors with file:line, dial-string safety."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callflow.config import Config, ConfigError, Target, load_config, parse_config, to_e164

ROOT = Path(__file__).resolve().parents[2]

VALID = """\
version: 1
settings:
  default_country: US
  repeat_window_days: 7
  ring_timeout: 20
trunks:
  pstn-trunk: {}
targets:
  alice:      {endpoint: agent1, ring_timeout: 15}
  bob:        {endpoint: agent2}
  nyc-office: {number: "+15551234567", trunk: pstn-trunk}
campaigns:
  spring-promo: {source: google, medium: cpc, keyword: "emergency plumber", route: [alice, bob, nyc-office]}
  general:      {route: [alice]}
numbers:
  - {number: "8005550001", campaign: spring-promo, ad: "ad-17"}
  - {number: "+18005550002", campaign: general, source: billboard, medium: offline}
unknown_number:
  campaign: general
"""  # noqa: E501


def errors_of(text: str, filename: str = "rules/callflow.yaml") -> list[str]:
    """Return the problems parse_config reports for a text."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, filename)
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    """Return the 1-based line of the first line containing needle."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


def pos(text: str, needle: str, token: str) -> str:
    """Return ``line:column`` of token, on the first line containing needle (both 1-based)."""
    line = line_of(text, needle)
    column = text.splitlines()[line - 1].index(token) + 1
    return f"{line}:{column}"


def test_valid_file_loads() -> None:
    config = parse_config(VALID, "x.yaml")
    assert config.settings.default_country == "US"
    assert config.settings.repeat_window_days == 7
    assert set(config.trunks) == {"pstn-trunk"}
    assert config.targets["alice"].name == "alice"
    assert config.targets["alice"].ring_timeout == 15
    assert config.targets["bob"].ring_timeout == 20
    assert config.campaigns["spring-promo"].route == ("alice", "bob", "nyc-office")
    assert config.campaigns["spring-promo"].keyword == "emergency plumber"
    first, second = config.numbers
    assert (first.number, first.original, first.ad) == ("+18005550001", "8005550001", "ad-17")
    assert (second.number, second.original) == ("+18005550002", "+18005550002")
    assert config.unknown_number.campaign == "general"


def test_dial_strings() -> None:
    config = parse_config(VALID)
    assert config.targets["alice"].dial_string == "PJSIP/agent1"
    assert config.targets["nyc-office"].dial_string == "PJSIP/+15551234567@pstn-trunk"
    routed = [t.dial_string for t in config.route_targets("spring-promo")]
    assert routed == ["PJSIP/agent1", "PJSIP/agent2", "PJSIP/+15551234567@pstn-trunk"]


def test_models_are_frozen() -> None:
    config = parse_config(VALID)
    with pytest.raises(ValueError):
        config.targets["alice"].endpoint = "evil"


def test_settings_ring_timeout_is_the_default() -> None:
    config = parse_config(VALID.replace("ring_timeout: 20", "ring_timeout: 33"))
    assert config.targets["bob"].ring_timeout == 33
    assert config.targets["alice"].ring_timeout == 15


def test_minimal_file_uses_defaults() -> None:
    text = "version: 1\ntargets: {a: {endpoint: agent1}}\ncampaigns: {c: {route: [a]}}\n"
    config = parse_config(text + "unknown_number: {campaign: c}\n")
    assert config.settings.default_country == "US"
    assert config.settings.ring_timeout == 20
    assert config.numbers == ()
    assert dict(config.trunks) == {}


def test_example_file_loads() -> None:
    config = load_config(ROOT / "rules" / "callflow.yaml")
    endpoints = {t.endpoint for t in config.targets.values() if t.endpoint}
    assert endpoints <= {f"agent{i}" for i in range(1, 9)}
    numbers = {n.number: n.campaign for n in config.numbers}
    assert numbers == {
        "+18005550001": "spring-promo",
        "+18005550002": "general",
        "+18005550003": "routing-demo",
    }
    spring = [t.dial_string for t in config.route_targets("spring-promo")]
    assert spring == ["PJSIP/agent1", "PJSIP/agent2", "PJSIP/+15551234567@pstn-trunk"]
    assert [t.dial_string for t in config.route_targets("general")] == ["PJSIP/agent3"]
    unknown = config.route_targets(config.unknown_number.campaign)
    assert [t.dial_string for t in unknown] == ["PJSIP/agent4"]


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"version: 1\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_load_config_reports_the_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(VALID.replace("endpoint: agent2", "endpoint: 'agent 2'"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    where = pos(VALID, "bob:", "endpoint")
    assert str(info.value).startswith(f"{path}:{where}: targets.bob.endpoint")


# --- cross references -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "needle", "token", "expected"),
    [
        (
            "route: [alice, bob, nyc-office]",
            "route: [alice, carol, nyc-office]",
            "spring-promo:",
            "carol",
            "campaigns.spring-promo.route[1]: unknown target 'carol'",
        ),
        (
            "campaign: spring-promo, ad",
            "campaign: summer, ad",
            "8005550001",
            "campaign",
            "numbers[0].campaign: unknown campaign 'summer'",
        ),
        (
            "trunk: pstn-trunk}",
            "trunk: other-trunk}",
            "nyc-office:",
            "trunk",
            "targets.nyc-office.trunk: unknown trunk 'other-trunk'",
        ),
        (
            '"+18005550002"',
            '"1 (800) 555-0001"',
            "billboard",
            "number",
            "numbers[1].number: duplicate tracking number +18005550001 (also numbers[0])",
        ),
        (
            "  campaign: general\n",
            "  campaign: nowhere\n",
            "campaign: nowhere",
            "campaign",
            "unknown_number.campaign: unknown campaign 'nowhere'",
        ),
    ],
)
def test_cross_reference_errors(old: str, new: str, needle: str, token: str, expected: str) -> None:
    text = VALID.replace(old, new)
    assert text != VALID
    problems = errors_of(text)
    assert problems == [f"rules/callflow.yaml:{pos(text, needle, token)}: {expected}"]


def test_duplicate_after_normalisation_forms() -> None:
    text = VALID.replace('"+18005550002"', "18005550001")
    assert any("duplicate tracking number +18005550001" in p for p in errors_of(text))


def test_multiple_errors_are_all_listed() -> None:
    text = (
        VALID.replace("route: [alice]", "route: [alice, zed]")
        .replace("trunk: pstn-trunk}", "trunk: nope}")
        .replace("  campaign: general\n", "  campaign: gone\n")
    )
    problems = errors_of(text)
    assert len(problems) == 3
    assert "route[1]: unknown target 'zed'" in problems[1]
    assert "unknown trunk 'nope'" in problems[0]
    assert "unknown campaign 'gone'" in problems[2]


def test_multiple_structural_errors_are_all_listed() -> None:
    text = (
        VALID.replace("endpoint: agent1", "endpoint: 'agent 1;x'")
        .replace("{endpoint: agent2}", "{endpoint: agent2, color: red}")
        .replace("repeat_window_days: 7", "repeat_window_days: -1")
    )
    problems = errors_of(text)
    assert problems == [
        f"rules/callflow.yaml:4:3: settings.repeat_window_days: {problems[0].split(': ', 2)[2]}",
        f"rules/callflow.yaml:{pos(text, 'alice:', 'endpoint')}: targets.alice.endpoint: "
        "'agent 1;x' is not a valid endpoint name",
        f"rules/callflow.yaml:{pos(text, 'bob:', 'color')}: targets.bob.color: unknown key",
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{endpoint: agent2}", "{}", "targets.bob: needs 'endpoint'"),
        ("{endpoint: agent2}", "{endpoint: agent2, number: '+15551234567'}", "not both"),
        ("{endpoint: agent2}", "{number: '+15551234567'}", "needs both 'number' and 'trunk'"),
        ("{endpoint: agent2}", "{trunk: pstn-trunk}", "needs both 'number' and 'trunk'"),
        ("{endpoint: agent2}", "{endpoint: agent2, name: robert}", "targets.bob.name: remove"),
        ("{endpoint: agent2}", "agent2", "targets.bob: must be a mapping"),
        ("route: [alice]", "route: []", "campaigns.general.route: "),
        ("ring_timeout: 15", "ring_timeout: 0", "targets.alice.ring_timeout: "),
        ("ring_timeout: 15", "ring_timeout: true", "targets.alice.ring_timeout: True is not"),
        ("ring_timeout: 20", "ring_timeout: lots", "settings.ring_timeout: "),
        ("default_country: US", "default_country: XX", "'XX' is not a known country"),
        ("version: 1", "version: 2", "version: must be 1"),
        ('ad: "ad-17"', 'ad: "ad\\u0007"', "numbers[0].ad: 'ad\\x07' contains control"),
        ("  campaign: general\n", "  campaign: general\n  color: red\n", "unknown_number.color"),
    ],
)
def test_structural_errors(old: str, new: str, message: str) -> None:
    text = VALID.replace(old, new)
    assert text != VALID
    problems = errors_of(text)
    assert len(problems) == 1, problems
    assert message in problems[0]
    assert re.match(r"rules/callflow\.yaml:\d+:\d+: ", problems[0])


def test_missing_required_keys() -> None:
    problems = errors_of("version: 1\n")
    assert problems == [
        "rules/callflow.yaml:1:1: campaigns: is required",
        "rules/callflow.yaml:1:1: unknown_number: is required",
    ]


def test_lowercase_country_is_accepted() -> None:
    config = parse_config(VALID.replace("default_country: US", "default_country: gb"))
    assert config.settings.default_country == "GB"


def test_default_country_normalises_numbers() -> None:
    text = VALID.replace("default_country: US", "default_country: GB").replace(
        '"8005550001"', '"020 7946 0000"'
    )
    config = parse_config(text)
    assert config.numbers[0].number == "+442079460000"
    assert config.numbers[0].original == "020 7946 0000"


def test_integer_numbers_and_names_are_text() -> None:
    text = VALID.replace('"8005550001"', "8005550001").replace("endpoint: agent2", "endpoint: 1001")
    config = parse_config(text.replace('ad: "ad-17"', "ad: 17"))
    assert config.numbers[0].number == "+18005550001"
    assert config.numbers[0].ad == "17"
    assert config.targets["bob"].dial_string == "PJSIP/1001"


def test_unquoted_plus_number_keeps_its_country() -> None:
    text = VALID.replace('"+18005550002"', "+442079460000")
    assert parse_config(text).numbers[1].number == "+442079460000"


def test_yaml_11_words_are_text() -> None:
    text = VALID.replace("source: google", "source: no").replace(
        "medium: cpc", "medium: 2024-01-01"
    )
    campaign = parse_config(text).campaigns["spring-promo"]
    assert (campaign.source, campaign.medium) == ("no", "2024-01-01")


def test_leading_zero_is_not_octal() -> None:
    text = VALID.replace("default_country: US", "default_country: GB").replace(
        '"8005550001"', "02079460000"
    )
    assert parse_config(text).numbers[0].number == "+442079460000"


# --- dial-string injection ----------------------------------------------------------------------

INJECTIONS = [
    "agent1&PJSIP/evil",
    "a,b",
    "a(b)",
    "a|b",
    "agent1\\nDial(PJSIP/evil)",
    "agent1;x",
    "agent 1",
    "a/b",
    "a@b",
    "",
    "a" * 65,
    "agënt1",
]


@pytest.mark.parametrize("endpoint", INJECTIONS)
def test_endpoint_injection_rejected(endpoint: str) -> None:
    text = VALID.replace("endpoint: agent2", f'endpoint: "{endpoint}"')
    problems = errors_of(text)
    assert problems == [
        f"rules/callflow.yaml:{pos(text, 'bob:', 'endpoint')}: targets.bob.endpoint: "
        f"{parse_escape(endpoint)!r} is not a valid endpoint name"
    ]


def parse_escape(text: str) -> str:
    """Return what a double-quoted YAML scalar with a \\n escape means."""
    return text.replace("\\n", "\n")


@pytest.mark.parametrize("trunk", INJECTIONS)
def test_trunk_injection_rejected(trunk: str) -> None:
    text = VALID.replace("pstn-trunk: {}", f'"{trunk}": {{}}').replace(
        "trunk: pstn-trunk}", f'trunk: "{trunk}"}}'
    )
    problems = errors_of(text)
    assert problems
    assert all("not a valid" in p for p in problems), problems
    assert any(
        p.startswith(f"rules/callflow.yaml:{line_of(text, 'trunks:') + 1}:3: ") for p in problems
    )
    assert any("targets.nyc-office.trunk" in p for p in problems)


@pytest.mark.parametrize(
    "number",
    [
        "+1555; x",
        "+15551234567;x",
        "+15551234567&PJSIP/evil",
        "+15551234567,1",
        "+1555(1234567)x",
        "+15551234567|x",
        "+15551234567\\nx",
        "+1555 123 4567 ext 9",
        "1800FLOWERS",
        "+1",
        "+123456789012345678",
        "",
        "abc",
    ],
)
def test_pstn_number_injection_rejected(number: str) -> None:
    text = VALID.replace('number: "+15551234567"', f'number: "{number}"')
    problems = errors_of(text)
    assert problems == [
        f"rules/callflow.yaml:{pos(text, 'nyc-office:', 'number')}: targets.nyc-office.number: "
        f"{parse_escape(number)!r} is not a valid phone number"
    ]


@pytest.mark.parametrize("name", ["alice;x", "a b", "a&b", "a,b"])
def test_target_and_campaign_names_are_checked(name: str) -> None:
    text = VALID.replace("alice:      {", f'"{name}": {{').replace("general:  ", f'"{name}":')
    problems = errors_of(text)
    assert any("targets." in p and "is not a valid name" in p for p in problems)
    assert any("campaigns." in p and "is not a valid name" in p for p in problems)


def test_pstn_number_is_normalised() -> None:
    text = VALID.replace('number: "+15551234567"', 'number: "(555) 123-4567"')
    target = parse_config(text).targets["nyc-office"]
    assert target.dial_string == "PJSIP/+15551234567@pstn-trunk"


def test_target_model_rejects_injection_directly() -> None:
    with pytest.raises(ValueError):
        Target(name="x", endpoint="agent1&PJSIP/evil")
    with pytest.raises(ValueError):
        Target(name="x", number="+15551234567;x", trunk="pstn-trunk")


# --- YAML problems ------------------------------------------------------------------------------


def test_yaml_syntax_error_has_line() -> None:
    text = VALID.replace("bob:        {endpoint: agent2}", "bob:        {endpoint: agent2")
    problems = errors_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("rules/callflow.yaml:")
    assert "YAML syntax error" in problems[0]
    line = int(problems[0].split(":")[1])
    assert line_of(text, "bob:") <= line <= line_of(text, "nyc-office:")


def test_yaml_bad_indentation_has_line() -> None:
    text = "version: 1\ntargets:\n  a: {endpoint: agent1}\n b: x\n"
    assert errors_of(text)[0].startswith("rules/callflow.yaml:4:2: YAML syntax error")


def test_duplicate_yaml_key_is_an_error() -> None:
    text = VALID.replace("  bob:", "  alice: {endpoint: agent9}\n  bob:")
    problems = errors_of(text)
    where = pos(text, "agent9", "alice")
    assert f"rules/callflow.yaml:{where}: duplicate key 'alice'" in problems


@pytest.mark.parametrize("text", ["", "# nothing\n", "- 1\n- 2\n", "just text\n"])
def test_not_a_mapping(text: str) -> None:
    assert errors_of(text) == [
        "rules/callflow.yaml:1:1: the file must be a mapping with version, targets, campaigns, ..."
    ]


def test_config_model_validate_checks_references() -> None:
    with pytest.raises(ValueError, match="unknown target 'zed'"):
        Config.model_validate(
            {
                "version": 1,
                "targets": {"a": {"endpoint": "agent1"}},
                "campaigns": {"c": {"route": ["a", "zed"]}},
                "unknown_number": {"campaign": "c"},
            }
        )


# --- to_e164 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8005550001", "+18005550001"),
        ("18005550001", "+18005550001"),
        ("+18005550001", "+18005550001"),
        ("1-800-555-0001", "+18005550001"),
        ("+44 20 7946 0000", "+442079460000"),
        ("", None),
        ("abc", None),
        ("12", None),
        ("9" * 30, None),
    ],
)
def test_to_e164(text: str, expected: str | None) -> None:
    assert to_e164(text, "US") == expected


@pytest.mark.parametrize("char", ["\x08", "\ud800", "\x00"])
def test_yaml_forbidden_character_has_line(char: str) -> None:
    assert errors_of(f"version: 1\nx: a{char}\n") == [
        f"rules/callflow.yaml:2:5: YAML syntax error: character U+{ord(char):04X} is not allowed"
    ]


_EXAMPLE = (ROOT / "rules" / "callflow.yaml").read_text()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_EXAMPLE)), st.integers(0, 20), st.text(max_size=8))
def test_mangled_files_only_raise_config_error(start: int, length: int, insert: str) -> None:
    text = _EXAMPLE[:start] + insert + _EXAMPLE[start + length :]
    try:
        parse_config(text, "f.yaml")
    except ConfigError as exc:
        assert exc.problems
        assert all(re.match(r"f\.yaml:\d+:\d+: ", problem) for problem in exc.problems)
