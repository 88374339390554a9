"""Pure protocol tests: raw bytes in, events out."""

from __future__ import annotations

import itertools
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callflow.agi import (
    CommandError,
    HangupNotice,
    Header,
    HeaderParser,
    IncompleteHeader,
    ProtocolError,
    Reply,
    ReplyParser,
    format_command,
)
from callflow.agi.fake import HEADER, build_header
from callflow.agi.protocol import _LINES_RE, _parse_query


def parse_header(data: bytes) -> Header:
    """Feed a whole header at once."""
    header = HeaderParser().feed(data)
    assert header is not None
    return header


def replies(*chunks: bytes) -> list[Reply | HangupNotice]:
    """Feed chunks to a fresh ReplyParser and collect every event."""
    parser = ReplyParser()
    events: list[Reply | HangupNotice] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    assert not parser.pending
    return events


def one_reply(line: bytes) -> Reply:
    """Parse exactly one reply."""
    (event,) = replies(line)
    assert isinstance(event, Reply)
    return event


# --- header ----------------------------------------------------------------------------------


def check_realistic(header: Header) -> None:
    """Assert every field of the realistic header."""
    assert header.script == "/inbound"
    assert dict(header.query) == {"dnis": "8005550001", "x": "1"}
    assert header.args == ("first", "second, with (parens)")
    assert header.env["agi_network"] == "yes"
    assert header.env["agi_network_script"] == "inbound?dnis=8005550001&x=1"
    assert header.uniqueid == "1732280000.1"
    assert header.channel == "PJSIP/trunk-00000001"
    assert header.callerid == "15551234567"
    assert header.calleridname == "Jane Doe"
    assert header.dnid == "8005550001"
    assert header.extension == "8005550001"
    assert header.context == "from-trunk"
    assert header.get("rdnis") is None
    assert header.env["agi_rdnis"] == "unknown"
    assert header.get("accountcode") == ""
    assert header.get("agi_priority") == "2"
    assert len(header.env) == 24


def test_header_in_one_chunk() -> None:
    check_realistic(parse_header(HEADER))


def test_header_split_at_every_byte() -> None:
    for cut in range(1, len(HEADER)):
        parser = HeaderParser()
        assert parser.feed(HEADER[:cut]) is None
        header = parser.feed(HEADER[cut:])
        assert header is not None, cut
        check_realistic(header)
        assert parser.trailing == b""


def test_header_byte_by_byte() -> None:
    parser = HeaderParser()
    results = [parser.feed(HEADER[i : i + 1]) for i in range(len(HEADER))]
    assert all(r is None for r in results[:-1])
    assert results[-1] is not None
    check_realistic(results[-1])
    parser.eof()  # complete: EOF is fine


def test_header_keeps_trailing_bytes_for_reply_parser() -> None:
    parser = HeaderParser()
    header = parser.feed(HEADER + b"HANGUP\n200 res")
    assert header is not None
    assert parser.trailing == b"HANGUP\n200 res"
    assert parser.feed(b"ult=0\n") is None
    assert parser.trailing == b"HANGUP\n200 result=0\n"
    events = ReplyParser().feed(parser.trailing)
    assert events[0] == HangupNotice()
    assert isinstance(events[1], Reply) and events[1].result == "0"


def test_unknown_and_missing_values_are_none() -> None:
    header = parse_header(build_header(callerid="unknown", calleridname="unknown", dnid="unknown"))
    assert header.callerid is None
    assert header.calleridname is None
    assert header.dnid is None
    assert header.get("no_such_key") is None


def test_non_utf8_caller_name_round_trips() -> None:
    raw = b"Jos\xe9 M\xfcller \xff"
    data = HEADER.replace(b"agi_calleridname: Jane Doe", b"agi_calleridname: " + raw)
    header = parse_header(data)
    assert header.calleridname is not None
    assert header.calleridname.encode("utf-8", "surrogateescape") == raw
    assert header.uniqueid == "1732280000.1"


@pytest.mark.parametrize(
    ("script", "path", "query"),
    [
        (None, "/", {}),
        ("", "/", {}),
        ("?extension=100", "/", {"extension": "100"}),
        ("inbound", "/inbound", {}),
        ("inbound/", "/inbound", {}),
        ("ivr/sales?a=1&b=&a=2", "/ivr/sales", {"a": "2", "b": ""}),
        ("inbound?name=J%C3%B6rg+X", "/inbound", {"name": "Jörg X"}),
    ],
)
def test_script_path_and_query(script: str | None, path: str, query: dict[str, str]) -> None:
    header = parse_header(build_header(script))
    assert header.script == path
    assert dict(header.query) == query


def test_values_with_colons_and_crlf() -> None:
    header = parse_header(b"agi_request: agi://h:4573/x\r\nagi_arg_1: a: b\r\n\r\n")
    assert header.env["agi_request"] == "agi://h:4573/x"
    assert header.args == ("a: b",)


def test_args_ordered_numerically() -> None:
    data = b"".join(f"agi_arg_{i}: v{i}\n".encode() for i in (10, 2, 1, 3, 4, 5, 6, 7, 8, 9))
    assert parse_header(data + b"\n").args == tuple(f"v{i}" for i in range(1, 11))


def test_args_found_whichever_chunk_brings_them() -> None:
    data = b"agi_network: yes\nagi_arg_2: b\nagi_arg_1: a\nagi_type: PJSIP\n\n"
    for cut in range(1, len(data)):
        parser = HeaderParser()
        assert parser.feed(data[:cut]) is None
        header = parser.feed(data[cut:])
        assert header is not None and header.args == ("a", "b"), cut
    assert parse_header(b"agi_network: yes\nagi_type: PJSIP\n\n").args == ()


@pytest.mark.parametrize("partial", [b"", b"agi_network: yes\n", b"agi_network: yes\nagi_chan"])
def test_eof_before_blank_line_is_incomplete(partial: bytes) -> None:
    parser = HeaderParser()
    assert parser.feed(partial) is None
    with pytest.raises(IncompleteHeader):
        parser.eof()


def test_oversized_line_is_rejected_before_its_newline() -> None:
    parser = HeaderParser()
    with pytest.raises(ProtocolError):
        parser.feed(b"agi_x: " + b"a" * 8192)


def test_oversized_line_is_rejected_with_newline() -> None:
    with pytest.raises(ProtocolError):
        HeaderParser().feed(b"agi_x: " + b"a" * 9000 + b"\n\n")


def test_line_at_limit_is_accepted() -> None:
    line = b"agi_x: " + b"a" * (8192 - 8) + b"\n"
    assert len(line) == 8192
    assert parse_header(line + b"\n").env["agi_x"] == "a" * (8192 - 8)
    with pytest.raises(ProtocolError):
        HeaderParser().feed(line[:-1] + b"a\n")


def test_header_values_keep_inner_carriage_returns_and_colons() -> None:
    header = parse_header(b"agi_a: x\ry\r\nagi_b:no space: here\nagi_c:  two\n\n")
    assert dict(header.env) == {"agi_a": "x\ry", "agi_b": "no space: here", "agi_c": " two"}


def test_the_one_pass_check_takes_a_whole_realistic_header() -> None:
    # The lines before the blank line, the last without its newline, as the parser checks them.
    block = HEADER[: HEADER.index(b"\n\n")]
    assert _LINES_RE.match(block) is not None
    assert _LINES_RE.match(block + b"\n") is not None
    for bad in (b"agi_: x", b"agi_a x", b"agi-a: x", b"\nagi_a: x", b"agi_\xc3\xa9: x"):
        assert _LINES_RE.match(block + b"\n" + bad) is None, bad


def test_a_repeated_key_reads_as_its_last_line() -> None:
    header = parse_header(b"agi_callerid: 1\nagi_type: PJSIP\nagi_callerid: 2\n\n")
    assert header.callerid == "2"
    assert dict(header.env) == {"agi_callerid": "2", "agi_type": "PJSIP"}


def test_a_value_that_looks_like_a_key_is_only_a_value() -> None:
    header = parse_header(b"agi_calleridname: x\nagi_request: agi_callerid: 9\n\n")
    assert header.callerid is None
    assert header.get("request") == "agi_callerid: 9"
    assert header.get("calleridname") == "x"  # not agi_callerid's line, nor a prefix of it
    assert header.get("agi_\u00e9") is None


@pytest.mark.parametrize(
    "lines",
    [
        [b"agi_type: PJSIP", b"agi_callerid: +1 (415) 555-0100", b"agi_dnid: 8005550100"],
        [b"agi_network_script: inbound?x=1: y", b"agi_type:  two spaces", b"agi_arg_3: c: d"],
        [b"agi_type:PJSIP", b"agi_context: from-carrier", b"agi_arg_12: twelve"],
        [b"agi_calleridname: Jos\xc3\xa9 \xff", b"agi_custom_key: kept", b"agi_threadid: 1"],
        [b"agi_arg_1234567890: ten digits", b"agi__: odd but valid", b"agi_enhanced: 0.0"],
    ],
)
def test_known_keys_parse_as_line_by_line(lines: list[bytes]) -> None:
    # max_line below the block's size makes the parser take every line on its own.
    data = b"\n".join([*lines, b"agi_request: agi://127.0.0.1/x" + b"x" * 40]) + b"\n\n"
    by_line = HeaderParser(max_line=80).feed(data)
    assert by_line is not None
    assert parse_header(data).env == by_line.env
    assert parse_header(data).args == by_line.args


@pytest.mark.parametrize("bad", [b"agi_type PJSIP", b"agi_type", b"agi-type: x", b"type: x"])
def test_a_bad_line_after_known_ones_is_refused(bad: bytes) -> None:
    with pytest.raises(ProtocolError, match="not an AGI header line"):
        HeaderParser().feed(b"agi_type: PJSIP\nagi_dnid: 1\n" + bad + b"\n\n")


def test_oversized_header_is_rejected() -> None:
    parser = HeaderParser(max_size=1024)
    with pytest.raises(ProtocolError):
        for i in range(100):
            parser.feed(f"agi_k{i}: {'v' * 20}\n".encode())


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"Host: example\n",
        b"\n",
        b"agi network: yes\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
        b"agi_a: 1\nnoise agi_b: 2\nagi_c: 3\n\n",  # a good line inside a bad one
        b"agi_a: 1\nagi_: 2\n\n",
        b"agi_a: 1\nagi_\xc3\xa9: 2\n\n",
    ],
)
def test_garbage_header_is_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        HeaderParser().feed(data)


def test_header_is_immutable() -> None:
    header = parse_header(HEADER)
    with pytest.raises(AttributeError):
        header.script = "/x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        header.env["agi_network"] = "no"  # type: ignore[index]
    assert header == parse_header(HEADER)
    assert hash(header) == hash(parse_header(HEADER))


# --- replies ---------------------------------------------------------------------------------


def test_simple_success() -> None:
    reply = one_reply(b"200 result=1 (value)\n")
    assert (reply.code, reply.result, reply.data, reply.int_result) == (200, "1", "value", 1)
    assert reply.text == "200 result=1 (value)"
    assert dict(reply.extras) == {}


def test_data_containing_parentheses_uses_last_paren() -> None:
    reply = one_reply(b"200 result=1 (Jane (Sales)) Doe))\n")
    assert reply.data == "Jane (Sales)) Doe)"


def test_unset_variable() -> None:
    reply = one_reply(b"200 result=0\n")
    assert (reply.result, reply.data, reply.int_result) == ("0", None, 0)


def test_get_data_timeout() -> None:
    reply = one_reply(b"200 result=12 (timeout)\n")
    assert (reply.result, reply.data, reply.int_result) == ("12", "timeout", 12)


def test_get_data_timeout_no_digits() -> None:
    reply = one_reply(b"200 result= (timeout)\n")
    assert (reply.result, reply.data, reply.int_result) == ("", "timeout", None)


def test_stream_file_failure_with_endpos() -> None:
    reply = one_reply(b"200 result=-1 endpos=1234\n")
    assert (reply.result, reply.int_result, reply.data) == ("-1", -1, None)
    assert dict(reply.extras) == {"endpos": "1234"}


def test_data_then_extras() -> None:
    reply = one_reply(b"200 result=0 (timeout) endpos=8000\n")
    assert reply.data == "timeout"
    assert dict(reply.extras) == {"endpos": "8000"}


def test_free_text_after_result() -> None:
    reply = one_reply(b"200 result=0 Gosub complete\n")
    assert (reply.result, reply.data, dict(reply.extras)) == ("0", None, {})
    assert reply.text == "200 result=0 Gosub complete"


def test_trying_then_hangup_then_final() -> None:
    events = replies(b"100 result=0 Trying...\nHANGUP\n200 result=0 Gosub complete\n")
    assert [type(e) for e in events] == [Reply, HangupNotice, Reply]
    first, _, last = events
    assert isinstance(first, Reply) and first.code == 100 and first.result == "0"
    assert isinstance(last, Reply) and last.code == 200


def test_hangup_before_reply() -> None:
    events = replies(b"HANGUP\n", b"200 result=-1\n")
    assert events[0] == HangupNotice()
    assert isinstance(events[1], Reply) and events[1].int_result == -1


USAGE = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
    b"\n"
    b"Stream the given file, and receive DTMF data.\n"
    b"520 End of proper usage.\n"
)


def test_multi_line_520_is_one_reply() -> None:
    (reply,) = replies(USAGE)
    assert isinstance(reply, Reply)
    assert reply.code == 520
    assert reply.result == ""
    assert reply.text == USAGE.decode().removesuffix("\n")
    assert reply.text.splitlines()[-1] == "520 End of proper usage."


def test_multi_line_520_split_anywhere() -> None:
    for cut in range(1, len(USAGE)):
        events = replies(USAGE[:cut], USAGE[cut:] + b"HANGUP\n")
        assert [type(e) for e in events] == [Reply, HangupNotice], cut


def test_multi_line_520_with_hangup_word_in_usage() -> None:
    data = b"520-Invalid command syntax.  Proper usage follows:\nHANGUP\n520 End of proper usage.\n"
    (reply,) = replies(data)
    assert isinstance(reply, Reply) and "HANGUP" in reply.text


@pytest.mark.parametrize(
    ("line", "code", "result"),
    [
        (b"520 Invalid command syntax.  Proper usage not available.", 520, ""),
        (b"510 Invalid or unknown command", 510, ""),
        (b"511 Command Not Permitted on a dead channel or intercept routine", 511, ""),
        (b"503 result=-2 Memory allocation failure", 503, "-2"),
    ],
)
def test_error_replies(line: bytes, code: int, result: str) -> None:
    reply = one_reply(line + b"\n")
    assert (reply.code, reply.result, reply.text) == (code, result, line.decode())
    assert reply.ok is False


def test_partial_lines_across_feeds() -> None:
    parser = ReplyParser()
    assert parser.feed(b"20") == []
    assert parser.feed(b"0 result=1 (a") == []
    assert parser.pending
    (reply,) = parser.feed(b"b)\n2")
    assert isinstance(reply, Reply) and reply.data == "ab"
    assert parser.feed(b"00 result=0\n") == [Reply(200, "0", None, text="200 result=0")]


def test_non_utf8_reply_data_round_trips() -> None:
    reply = one_reply(b"200 result=1 (Jos\xe9)\n")
    assert reply.data is not None
    assert reply.data.encode("utf-8", "surrogateescape") == b"Jos\xe9"


def test_reply_line_too_long() -> None:
    parser = ReplyParser(max_line=100)
    with pytest.raises(ProtocolError):
        parser.feed(b"200 result=1 (" + b"x" * 200)
    with pytest.raises(ProtocolError):
        ReplyParser(max_line=100).feed(b"200 result=1 (" + b"x" * 200 + b")\n")


@pytest.mark.parametrize("line", [b"hello\n", b"HANGUP now\n", b"20 result=1\n", b"999 x\n"])
def test_garbage_reply_line(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        ReplyParser().feed(line)


# --- commands --------------------------------------------------------------------------------


def test_format_command_quoting() -> None:
    line = format_command("SET VARIABLE", 'say "hi"', "C:\\dir\\", "", "two words")
    assert line == b'SET VARIABLE "say \\"hi\\"" "C:\\\\dir\\\\" "" "two words"\n'


def test_format_command_verb_only() -> None:
    assert format_command("ANSWER") == b"ANSWER\n"
    assert format_command("GET VARIABLE", "DIALSTATUS") == b'GET VARIABLE "DIALSTATUS"\n'


def test_format_command_non_utf8_round_trip() -> None:
    value = b"Jos\xe9".decode("utf-8", "surrogateescape")
    assert format_command("VERBOSE", value) == b'VERBOSE "Jos\xe9"\n'


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b", "\n"])
def test_format_command_rejects_line_breaks_and_nul(bad: str) -> None:
    with pytest.raises(CommandError):
        format_command("SET VARIABLE", "X", bad)
    with pytest.raises(ValueError):
        format_command("VERBOSE", bad)


@pytest.mark.parametrize(
    "verb", ["", "GET\nVARIABLE", 'EXEC "x"', " ANSWER", "ANSWER ", "failure", "a  b"]
)
def test_format_command_rejects_bad_verbs(verb: str) -> None:
    with pytest.raises(CommandError):
        format_command(verb)


def test_format_command_requires_words() -> None:
    with pytest.raises(CommandError):
        format_command()


def test_format_command_arg_count_limit() -> None:
    assert format_command("NOOP", *["a"] * 126).count(b'"a"') == 126  # 127 words
    with pytest.raises(CommandError):
        format_command("NOOP", *["a"] * 127)  # 128 words would overflow argv
    with pytest.raises(CommandError):
        format_command("GET FULL VARIABLE", *["a"] * 125)


def test_format_command_length_limit() -> None:
    fill = 8191 - len(b'VERBOSE ""\n')
    assert len(format_command("VERBOSE", "x" * fill)) == 8191
    with pytest.raises(CommandError):
        format_command("VERBOSE", "x" * (fill + 1))


def test_format_command_rejects_unencodable() -> None:
    with pytest.raises(CommandError):
        format_command("VERBOSE", "\ud800")


def asterisk_parse_args(line: str) -> list[str]:
    """A Python port of res_agi.c parse_args(), for round-trip checks."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
                argv.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                argv[-1] = "".join(cur)
            cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
            argv.append("")
        cur.append(ch)
        escaped = False
    if cur is not None:
        argv[-1] = "".join(cur)
    return argv


_arg_text = st.text(st.characters(codec="utf-8", exclude_characters="\n\r\0"))


@given(st.lists(_arg_text, max_size=20))
def test_format_command_round_trips_through_asterisk_parser(args: list[str]) -> None:
    line = format_command("SET VARIABLE", *args).decode().removesuffix("\n")
    assert asterisk_parse_args(line) == ["SET", "VARIABLE", *args]


# --- fuzz ------------------------------------------------------------------------------------


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split data at the given (unsorted, possibly repeated) positions."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


_agi_bytes = st.one_of(
    st.binary(max_size=600),
    st.lists(
        st.sampled_from(
            [
                b"agi_network: yes\n",
                b"agi_arg_1: x\n",
                b"\n",
                b"HANGUP\n",
                b"200 result=1 (a)\n",
                b"520-x\n",
                b"520 y\n",
                b"100 result=0 Trying...\n",
                b"\xff\xfe",
                b":",
                b"agi_",
            ]
        ),
        max_size=40,
    ).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(_agi_bytes, st.lists(st.integers(min_value=0), max_size=12))
def test_header_parser_fuzz(data: bytes, cuts: list[int]) -> None:
    parser = HeaderParser(max_size=512, max_line=128)
    try:
        for chunk in _chunks(data, cuts):
            if parser.feed(chunk) is not None:
                break
        parser.eof()
    except ProtocolError:  # IncompleteHeader is a ProtocolError
        pass


@settings(max_examples=300, deadline=None)
@given(_agi_bytes, st.lists(st.integers(min_value=0), max_size=12))
def test_reply_parser_fuzz(data: bytes, cuts: list[int]) -> None:
    parser = ReplyParser(max_line=128, max_block=512)
    try:
        for chunk in _chunks(data, cuts):
            for event in parser.feed(chunk):
                assert isinstance(event, Reply | HangupNotice)
    except ProtocolError:
        pass


@given(st.text(alphabet="ab=&%+;2F1 é", max_size=30))
def test_query_parsing_matches_urllib(qs: str) -> None:
    expected = dict(parse_qsl(qs, keep_blank_values=True, errors="surrogateescape"))
    assert _parse_query(qs) == expected
