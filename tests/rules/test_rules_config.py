"""Validation of targets, groups, lists, menus and rules: every error names file:line:column."""

from __future__ import annotations

import pytest
from rules_helpers import config_of, pos, text_of

from callflow.config import ConfigError, parse_config

GROUPS = """\
groups:
  g: {targets: [t0, t1]}
"""


def problems(extra: str, targets: str | None = None) -> tuple[str, list[str]]:
    """Return the text and the problems parse_config reports for it."""
    text = text_of(extra, targets=targets)
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.yaml")
    return text, info.value.problems


def one(
    extra: str, needle: str, token: str | None, message: str, targets: str | None = None
) -> None:
    """Assert exactly one problem, at the token on the needle's line, with that message."""
    text, found = problems(extra, targets)
    assert found == [f"test.yaml:{pos(text, needle, token)}: {message}"]


T0 = "targets:\n  t0:\n    endpoint: agent1\n"


def test_a_full_featured_file_is_valid() -> None:
    config = config_of(
        """\
        lists:
          blocked: ["+12125550100", {number: "+1900*", expires: 2026-06-30}]
        groups:
          g: {strategy: weighted, targets: [t0, {target: t1, weight: 3}], sticky: {days: 7}}
        menus:
          main: {prompt: custom/menu, choices: ["1", "2"], invalid: repeat, timeout: {play: bye}}
        rules:
          - {name: block, when: {in_list: blocked}, reject: busy}
          - {when: {campaign: c}, ivr: main}
          - {when: {ivr: {main: "1"}, state: [NY, nj]}, route: g, max_attempts: 2}
          - {when: {hours: {mon-fri: ["09:00-17:00"]}, timezone: America/Chicago}, route: g}
          - {route: g, failover_on: busy, fallback: {voicemail: "100@default"}}
        """,
        targets="""\
        targets:
          t0:
            endpoint: agent1
            timezone: Europe/London
            hours: {mon-fri: ["09:00-12:00", "13:00-17:30"], sat: ["22:00-02:00"]}
            closed_dates: [2026-12-25, 01-01]
            caps: {daily: 40, monthly: {max: 500, on: converted}, convert_after: 60}
            concurrency: 2
            min_gap: 30
            priority: 1
            weight: 2
            tags: [spanish, vip]
          t1: {number: "(212) 555-0199", trunk: pstn}
        """,
    )
    t0 = config.targets["t0"]
    assert t0.timezone == "Europe/London" and config.targets["t1"].timezone == "America/New_York"
    assert t0.caps is not None and t0.caps.daily is not None
    assert (t0.caps.daily.max, t0.caps.daily.on) == (40, "answered")
    assert config.lists["blocked"][1].number == "+1900*"
    assert config.lists["blocked"][0].number == "+12125550100"
    assert config.rules[2].when.state == ("NY", "NJ")
    assert config.rules[4].failover_on == ("busy",)
    assert config.menus["main"].invalid is None  # repeat
    assert config.groups["g"].targets[1].weight == 3
    assert config.group("campaign:c").targets[0].target == "t0"


def test_unknown_target_in_group() -> None:
    one(
        "groups:\n  g: {targets: [t0, zed]}\n",
        "g: {",
        "zed",
        "groups.g.targets[1]: unknown target 'zed'",
    )


def test_group_with_no_targets() -> None:
    one(
        "groups:\n  g: {strategy: priority}\nrules:\n  - {route: g}\n",
        "g: {",
        "g:",
        "groups.g.targets: a group needs at least one target",
    )


def test_group_target_listed_twice() -> None:
    one(
        "groups:\n  g: {targets: [t0, t0]}\n",
        "g: {",
        "t0]",
        "groups.g.targets[1]: target 't0' is listed twice",
    )


def test_bad_strategy() -> None:
    text, found = problems("groups:\n  g: {strategy: random, targets: [t0]}\n")
    assert len(found) == 1
    assert found[0].startswith(
        f"test.yaml:{pos(text, 'g: {', 'strategy')}: groups.g.strategy: must be"
    )
    assert "'round_robin'" in found[0]


def test_unknown_group_in_rule() -> None:
    one("rules:\n  - {route: nope}\n", "- {route", "route", "rules[0].route: unknown group 'nope'")


def test_route_to_a_target_hints() -> None:
    one(
        "rules:\n  - {route: t1}\n",
        "- {route",
        "route",
        "rules[0].route: unknown group 't1' (a target: list it in a group)",
    )


def test_unknown_group_in_fallback() -> None:
    one(
        GROUPS + "rules:\n  - route: g\n    fallback: {route: gone}\n",
        "fallback",
        "route",
        "rules[0].fallback.route: unknown group 'gone'",
    )


def test_unknown_list() -> None:
    one(
        "rules:\n  - when: {in_list: vip}\n    hangup: true\n",
        "in_list",
        "in_list",
        "rules[0].when.in_list: unknown list 'vip'",
    )


def test_unknown_menu_in_action_and_condition() -> None:
    text, found = problems(
        "rules:\n  - {ivr: main}\n  - when: {ivr: {other: '1'}}\n    hangup: true\n"
    )
    assert found == [
        f"test.yaml:{pos(text, '- {ivr', 'ivr')}: rules[0].ivr: unknown menu 'main'",
        f"test.yaml:{pos(text, '{other', 'other')}: rules[1].when.ivr.other: unknown menu 'other'",
    ]


def test_bad_time_zone() -> None:
    one(
        "",
        "Mars",
        "timezone",
        "targets.t0.timezone: 'Mars/Olympus' is not a known time zone (an IANA name, e.g. "
        "America/New_York)",
        targets=T0 + "    timezone: Mars/Olympus\n",
    )


def test_bad_settings_time_zone() -> None:
    text = text_of("").replace("{timezone: America/New_York}", "{timezone: EST5EDT/x}")
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.yaml")
    assert info.value.problems == [
        f"test.yaml:{pos(text, 'settings', 'timezone')}: settings.timezone: 'EST5EDT/x' is not a "
        "known time zone (an IANA name, e.g. America/New_York)"
    ]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("9-5", "'9-5' is not a time range like '09:00-17:30'"),
        ("25:00-26:00", "'25:00-26:00' has a time that does not exist (00:00 to 24:00)"),
        ("09:00-09:00", "'09:00-09:00' is empty (write '00:00-24:00' for the whole day)"),
        ("09:60-10:00", "'09:60-10:00' has a time that does not exist (00:00 to 24:00)"),
    ],
)
def test_bad_time_range(written: str, message: str) -> None:
    one(
        "",
        written,
        f'"{written}',
        f"targets.t0.hours.mon-fri[1]: {message}",
        targets=T0 + f'    hours:\n      mon-fri: ["08:00-09:00", "{written}"]\n',
    )


def test_bad_day() -> None:
    one(
        "",
        "mon-fry",
        "mon-fry",
        "targets.t0.hours.mon-fry: 'mon-fry' is not a day or day range "
        "(mon..sun, e.g. 'mon-fri', 'sat,sun', 'daily')",
        targets=T0 + '    hours:\n      mon-fry: ["08:00-09:00"]\n',
    )


def test_day_given_twice() -> None:
    one(
        "",
        "      fri:",
        "fri",
        "targets.t0.hours.fri: fri is also in 'mon-fri'",
        targets=T0 + '    hours:\n      mon-fri: ["08:00-09:00"]\n      fri: ["10:00-11:00"]\n',
    )


def test_never_open() -> None:
    one(
        "",
        "hours",
        "hours",
        "targets.t0.hours: never open: every day listed has no time ranges",
        targets=T0 + "    hours:\n      mon-fri: []\n",
    )


def test_empty_hours() -> None:
    one(
        "",
        "hours",
        "hours",
        "targets.t0.hours: no days given: list days like 'mon-fri: [09:00-17:00]', "
        "or remove 'hours'",
        targets=T0 + "    hours: {}\n",
    )


def test_bad_closed_date() -> None:
    one(
        "",
        "2026-02-30",
        "2026-02-30",
        "targets.t0.closed_dates[0]: '2026-02-30' is not a date "
        "(YYYY-MM-DD, or MM-DD for every year)",
        targets=T0 + "    closed_dates: [2026-02-30]\n",
    )


def test_bad_cap_period() -> None:
    one(
        "",
        "weekly",
        "weekly",
        "targets.t0.caps.weekly: unknown cap period 'weekly' (use hourly, daily, monthly, total)",
        targets=T0 + "    caps: {daily: 5, weekly: 20}\n",
    )


def test_bad_cap_metric() -> None:
    one(
        "",
        "talked",
        "on",
        "targets.t0.caps.daily.on: must be 'dialed', 'answered' or 'converted'",
        targets=T0 + "    caps: {daily: {max: 5, on: talked}}\n",
    )


def test_negative_cap() -> None:
    text, found = problems("", targets=T0 + "    caps: {hourly: -1}\n")
    assert len(found) == 1 and found[0].startswith(
        f"test.yaml:{pos(text, 'hourly')}: targets.t0.caps.hourly.max: "
    )


def test_rule_after_a_catch_all_can_never_match() -> None:
    one(
        GROUPS
        + "rules:\n  - {name: all, route: g}\n  - {name: late, when: {state: NY}, route: g}\n",
        "late",
        "{",
        "rules[1]: can never match: 'all' (rules[0]) above matches every call",
    )


def test_an_ivr_rule_without_conditions_does_not_hide_the_next() -> None:
    config = config_of(
        GROUPS + "menus: {m: {prompt: p, choices: ['1']}}\nrules:\n  - {ivr: m}\n"
        "  - {when: {ivr: {m: '1'}}, route: g}\n"
    )
    assert len(config.rules) == 2


def test_empty_condition_list_can_never_match() -> None:
    one(
        GROUPS + "rules:\n  - when: {state: []}\n    route: g\n",
        "state",
        "state",
        "rules[0].when.state: an empty list can never match",
    )


def test_ivr_choice_the_menu_does_not_offer() -> None:
    one(
        GROUPS + "menus: {m: {prompt: p, choices: ['1', '2']}}\n"
        "rules:\n  - {ivr: m}\n  - when: {ivr: {m: '9'}}\n    route: g\n",
        "'9'",
        "'9'",
        "rules[1].when.ivr.m[0]: can never match: menu 'm' has no choice '9' (1, 2)",
    )


def test_ivr_condition_on_a_menu_no_rule_runs() -> None:
    one(
        GROUPS + "menus: {m: {prompt: p}}\nrules:\n  - when: {ivr: {m: '1'}}\n    route: g\n",
        "{m: '1'}",
        "m:",
        "rules[0].when.ivr.m: can never match: no rule runs menu 'm' (ivr: m)",
    )


def test_anonymous_callers_have_no_area_code() -> None:
    one(
        GROUPS + "rules:\n  - when: {anonymous: true, area_code: 212}\n    route: g\n",
        "area_code",
        "area_code",
        "rules[0].when.area_code: can never match: anonymous callers have no number (area_code)",
    )


def test_tracking_number_of_another_campaign() -> None:
    one(
        GROUPS + "rules:\n  - when: {campaign: c, tracking_number: 800-555-0002}\n    route: g\n",
        "800-555-0002",
        "800-555-0002",
        "rules[0].when.tracking_number[0]: can never match: +18005550002 belongs to campaign "
        "'other', not c",
    )


def test_tracking_number_not_listed() -> None:
    one(
        GROUPS + "rules:\n  - when: {tracking_number: '8005559999'}\n    route: g\n",
        "8005559999",
        "'8005559999'",
        "rules[0].when.tracking_number[0]: +18005559999 is not in 'numbers'",
    )


def test_two_actions() -> None:
    one(
        GROUPS + "rules:\n  - {route: g, play: closed}\n",
        "play",
        "play",
        "rules[0].play: give one action, not both 'route' and 'play'",
    )


def test_no_action() -> None:
    one(
        GROUPS + "rules:\n  - when: {state: NY}\n",
        "when",
        "when",
        "rules[0]: needs an action: one of route, ivr, collect_zip, play, voicemail, reject, "
        "hangup",
    )


def test_route_options_without_route() -> None:
    one(
        "rules:\n  - {play: closed, max_attempts: 2}\n",
        "max_attempts",
        "max_attempts",
        "rules[0].max_attempts: 'max_attempts' only goes with 'route'",
    )


def test_bad_failover_cause() -> None:
    text, found = problems(GROUPS + "rules:\n  - {route: g, failover_on: [busy, hungup]}\n")
    assert found == [
        f"test.yaml:{pos(text, 'hungup')}: rules[0].failover_on[1]: "
        "must be 'busy', 'noanswer' or 'unavailable'"
    ]


def test_bad_reject_cause() -> None:
    text, found = problems("rules:\n  - {reject: maybe}\n")
    assert found[0].startswith(f"test.yaml:{pos(text, 'reject')}: rules[0].reject: must be 'busy'")


def test_duplicate_rule_name() -> None:
    one(
        "rules:\n  - {name: x, when: {state: NY}, hangup: true}\n  - {name: x, hangup: true}\n",
        "- {name: x, hangup",
        "name",
        "rules[1].name: duplicate rule name 'x' (also rules[0])",
    )


def test_campaign_without_route_needs_a_catch_all() -> None:
    text = text_of("").replace("  other: {route: [t0]}", "  other: {source: web}")
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.yaml")
    assert info.value.problems == [
        f"test.yaml:{pos(text, 'other: {')}: campaigns.other: needs 'route' (targets for calls no "
        "rule matches), or add a last rule without conditions"
    ]
    parse_config(text + "rules:\n  - {play: closed}\n", "test.yaml")


@pytest.mark.parametrize(
    ("action", "token", "message"),
    [
        ("play: ../../etc/passwd", "play", "rules[0].play: '../../etc/passwd' is not a sound name"),
        ("play: 'a,b'", "play", "rules[0].play: 'a,b' is not a sound name"),
        ("voicemail: '1&2'", "voicemail", "rules[0].voicemail: '1&2' is not a mailbox"),
    ],
)
def test_unsafe_application_arguments(action: str, token: str, message: str) -> None:
    text, found = problems(f"rules:\n  - {{{action}}}\n")
    assert len(found) == 1
    assert found[0].startswith(f"test.yaml:{pos(text, token)}: {message}")


def test_bad_list_entries() -> None:
    text, found = problems(
        "lists:\n  l:\n    - '12'\n    - {number: '+1900*', expires: someday}\n    - '+1 900*'\n"
    )
    assert found == [
        f"test.yaml:{pos(text, chr(39) + '12')}: lists.l[0].number: '12' is not a phone number or "
        "a prefix like '+1900*'",
        f"test.yaml:{pos(text, 'someday', 'expires')}: lists.l[1].expires: 'someday' is not a date "
        "(YYYY-MM-DD) or an ISO date and time",
        f"test.yaml:{pos(text, chr(39) + '+1 900')}: lists.l[2].number: '+1 900*' is not "
        "a phone number or a prefix like '+1900*'",
    ]


def test_menu_choice_longer_than_max_digits() -> None:
    one(
        "menus:\n  m: {prompt: p, choices: ['1', '12']}\n",
        "m: {",
        "'12'",
        "menus.m.choices[1]: '12' is longer than max_digits 1",
    )


def test_menu_branch_must_be_repeat_or_action() -> None:
    one(
        "menus:\n  m: {prompt: p, invalid: again}\n",
        "m: {",
        "invalid",
        "menus.m.invalid: 'again': use 'repeat' or an action such as {play: SOUND}",
    )


def test_bool_conditions_are_strict() -> None:
    one(
        GROUPS + "rules:\n  - when: {repeat_caller: yes}\n    route: g\n",
        "repeat_caller",
        "repeat_caller",
        "rules[0].when.repeat_caller: must be true or false",
    )


def test_every_problem_is_listed_in_file_order() -> None:
    extra = "groups:\n  g: {targets: [zed]}\nrules:\n  - {route: nope, when: {state: NY}}\n"
    extra += "  - {route: g, play: x}\n"
    _, found = problems(extra, targets=T0 + "    timezone: Nowhere/Land\n")
    # Names are checked once every entry is well formed: first the structural problems ...
    assert [p.split(": ", 2)[1] for p in found] == ["targets.t0.timezone", "rules[1].play"]
    extra = extra.replace("play: x", "max_attempts: 2")
    _, found = problems(extra, targets=T0)
    # ... then every dangling name, in file order.
    assert [p.split(": ", 2)[1] for p in found] == ["groups.g.targets[0]", "rules[0].route"]
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)


def test_prompts_cannot_be_fallbacks_or_branches() -> None:
    text, found = problems(
        GROUPS + "menus:\n  m: {prompt: p, timeout: {collect_zip: {prompt: z}}}\n"
        "rules:\n  - {ivr: m}\n  - {route: g, fallback: {ivr: m}}\n"
    )
    assert found == [
        f"test.yaml:{pos(text, 'timeout', 'collect_zip')}: menus.m.timeout.collect_zip: "
        "'collect_zip' cannot be a fallback or a menu branch: use a rule",
        f"test.yaml:{pos(text, 'fallback', 'ivr')}: rules[1].fallback.ivr: "
        "'ivr' cannot be a fallback or a menu branch: use a rule",
    ]
