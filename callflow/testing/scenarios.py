"""SIPp scenario XML for the sandbox's carrier (UAC) and agents (UAS), generated per use."""

from __future__ import annotations

from xml.sax.saxutils import escape

# Final failure answers a carrier call may get; SIPp needs each response code literally.
FAILURE_CODES = (
    400, 401, 403, 404, 407, 408, 410, 480, 481, 484, 486, 487, 488,
    500, 501, 502, 503, 504, 600, 603, 604, 606,
)  # fmt: skip

_SDP = """v=0
o=callflow 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
"""


def _cdata(text: str) -> str:
    return "<![CDATA[\n" + text.replace("]]>", "]]]]><![CDATA[>") + "\n]]>"


def _header_value(value: str) -> str:
    """Make a value safe inside one SIP header line (no CR/LF, no SIPp keyword brackets)."""
    return value.replace("\r", " ").replace("\n", " ").replace("[", "(").replace("]", ")")


def carrier_scenario(
    *,
    ani: str,
    dnis: str,
    caller_name: str | None,
    hold_ms: int,
    dtmf_pcap: str | None,
    dtmf_delay_ms: int,
    extra_headers: dict[str, str],
    cancel_after_ms: int | None = None,
) -> str:
    """A UAC that calls DNIS from ANI, plays DTMF after answer, and hangs up after hold_ms.

    With cancel_after_ms the caller gives up that long after the call starts ringing (180).
    """
    name = f'"{_header_value(caller_name)}" ' if caller_name else ""
    ani_v, dnis_v = _header_value(ani), _header_value(dnis)
    extra = "".join(f"{_header_value(k)}: {_header_value(v)}\n" for k, v in extra_headers.items())
    invite = (
        f"INVITE sip:{dnis_v}@[remote_ip]:[remote_port] SIP/2.0\n"
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        f"From: {name}<sip:{ani_v}@[local_ip]:[local_port]>;tag=[pid]CF[call_number]\n"
        f"To: <sip:{dnis_v}@[remote_ip]:[remote_port]>\n"
        "Call-ID: [call_id]\n"
        "CSeq: 1 INVITE\n"
        f"Contact: <sip:{ani_v}@[local_ip]:[local_port]>\n"
        "Max-Forwards: 70\n"
        f"{extra}"
        "Content-Type: application/sdp\n"
        "Content-Length: [len]\n\n" + _SDP
    )
    failures = "\n".join(
        f'  <recv response="{code}" optional="true" next="failed"/>' for code in FAILURE_CODES
    )
    dtmf = ""
    if dtmf_pcap:
        dtmf = (
            f'  <pause milliseconds="{dtmf_delay_ms}"/>\n'
            f'  <nop><action><exec play_pcap_audio="{escape(dtmf_pcap)}"/></action></nop>\n'
        )
    ack_2xx = (
        "ACK [next_url] SIP/2.0\n"
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        "[routes]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\nCSeq: 1 ACK\n"
        "Max-Forwards: 70\nContent-Length: 0\n"
    )
    ack_failure = (
        "ACK sip:" + dnis_v + "@[remote_ip]:[remote_port] SIP/2.0\n"
        "[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\nCSeq: 1 ACK\n"
        "Max-Forwards: 70\nContent-Length: 0\n"
    )
    bye = (
        "BYE [next_url] SIP/2.0\n"
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        "[routes]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\nCSeq: 2 BYE\n"
        "Max-Forwards: 70\nContent-Length: 0\n"
    )
    ok_bye = (
        "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n"
        "[last_CSeq:]\nContent-Length: 0\n"
    )
    bye_wait_ms = max(1, hold_ms - (dtmf_delay_ms if dtmf_pcap else 0))
    if cancel_after_ms is None:
        provisional = (
            '  <recv response="180" optional="true" response_txn="invite"/>\n'
            '  <recv response="183" optional="true" response_txn="invite"/>'
        )
        cancel = ""
    else:
        provisional = (
            '  <recv response="180" response_txn="invite"/>\n'
            f'  <recv response="183" timeout="{cancel_after_ms}" ontimeout="cancel"/>'
        )
        cancel_msg = (
            f"CANCEL sip:{dnis_v}@[remote_ip]:[remote_port] SIP/2.0\n"
            "[last_Via:]\n[last_From:]\n"
            f"To: <sip:{dnis_v}@[remote_ip]:[remote_port]>\n"
            "[last_Call-ID:]\nCSeq: 1 CANCEL\nMax-Forwards: 70\nContent-Length: 0\n"
        )
        cancel = (
            '  <label id="cancel"/>\n'
            '  <nop><action><log message="CANCEL [clock_tick]"/></action></nop>\n'
            f'  <send start_txn="cancel">{_cdata(cancel_msg)}</send>\n'
            '  <recv response="200" response_txn="cancel"/>\n'
            '  <recv response="487" response_txn="invite"/>\n'
            f'  <send ack_txn="invite">{_cdata(ack_failure)}</send>\n'
            '  <nop next="end"/>\n'
        )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callflow carrier">
  <send retrans="500" start_txn="invite">{_cdata(invite)}</send>
  <recv response="100" optional="true" response_txn="invite"/>
{provisional}
{failures}
  <recv response="200" rrs="true" response_txn="invite"/>
  <send ack_txn="invite">{_cdata(ack_2xx)}</send>
  <nop><action><log message="ANSWERED [clock_tick]"/></action></nop>
{dtmf}  <recv request="BYE" timeout="{bye_wait_ms}" ontimeout="hangup"/>
  <send>{_cdata(ok_bye)}</send>
  <nop next="end"><action><log message="REMOTE-BYE [clock_tick]"/></action></nop>
  <label id="hangup"/>
  <nop><action><log message="LOCAL-BYE [clock_tick]"/></action></nop>
  <send retrans="500">{_cdata(bye)}</send>
  <recv response="200"/>
  <nop next="end"/>
  <label id="failed"/>
  <send ack_txn="invite">{_cdata(ack_failure)}</send>
  <nop next="end"/>
{cancel}  <label id="end"/>
</scenario>
"""


def agent_scenario(
    *,
    answer_after_ms: int | None,
    reject: int | None,
    talk_ms: int | None,
    press_pcap: str | None = None,
) -> str:
    """A UAS that rejects with a code, rings forever, or answers after ringing (then talks).

    With press_pcap the agent sends those DTMF digits half a second after answering.
    """
    trying = (
        "SIP/2.0 100 Trying\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n"
        "[last_CSeq:]\nContent-Length: 0\n"
    )
    ringing = (
        "SIP/2.0 180 Ringing\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]AG[call_number]\n"
        "[last_Call-ID:]\n[last_CSeq:]\nContact: <sip:[local_ip]:[local_port]>\n"
        "Content-Length: 0\n"
    )
    # The caller's From (with its tag) is kept for the To of a BYE the agent may send; SIPp
    # refuses a variable that is never used, so only answering agents capture it.
    ereg = '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>'
    capture = "" if reject is not None else f"<action>{ereg}</action>"
    body = [
        f'  <recv request="INVITE" crlf="true" rrs="true">{capture}</recv>',
        f"  <send>{_cdata(trying)}</send>",
    ]
    if reject is not None:
        reason = {486: "Busy Here", 480: "Temporarily Unavailable", 503: "Service Unavailable",
                  603: "Decline", 404: "Not Found"}.get(reject, "Rejected")  # fmt: skip
        final = (
            f"SIP/2.0 {reject} {reason}\n[last_Via:]\n[last_From:]\n"
            "[last_To:];tag=[pid]AG[call_number]\n[last_Call-ID:]\n[last_CSeq:]\n"
            "Content-Length: 0\n"
        )
        body += [f'  <send retrans="500">{_cdata(final)}</send>', '  <recv request="ACK"/>']
        return _wrap("agent", body)
    ok_cancel = (
        "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]AG[call_number]\n"
        "[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n"
    )
    terminated = (
        "SIP/2.0 487 Request Terminated\n[last_Via:]\n[last_From:]\n"
        "[last_To:];tag=[pid]AG[call_number]\n[last_Call-ID:]\nCSeq: [last_cseq_number] INVITE\n"
        "Content-Length: 0\n"
    )
    ok_invite = (
        "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]AG[call_number]\n"
        "[last_Call-ID:]\n[last_CSeq:]\n"
        "Contact: <sip:[local_ip]:[local_port];transport=[transport]>\n"
        "Content-Type: application/sdp\nContent-Length: [len]\n\n" + _SDP
    )
    bye = (
        "BYE [next_url] SIP/2.0\n"
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        "[routes]\n"
        "From: <sip:[local_ip]:[local_port]>;tag=[pid]AG[call_number]\n"
        "To: [$caller]\n"
        "Call-ID: [call_id]\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n"
    )
    ok_bye = (
        "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n"
        "[last_CSeq:]\nContent-Length: 0\n"
    )
    if answer_after_ms != 0:
        wait = "" if answer_after_ms is None else f' timeout="{answer_after_ms}" ontimeout="answer"'
        body += [
            f"  <send>{_cdata(ringing)}</send>",
            f'  <recv request="CANCEL"{wait}/>',
            f"  <send>{_cdata(ok_cancel)}</send>",
            f'  <send retrans="500">{_cdata(terminated)}</send>',
            '  <recv request="ACK" next="end"/>',
        ]
    body += [
        '  <label id="answer"/>',
        f'  <send retrans="500">{_cdata(ok_invite)}</send>',
        '  <recv request="ACK" crlf="true"/>',
    ]
    if press_pcap:
        body += [
            '  <pause milliseconds="500"/>',
            f'  <nop><action><exec play_pcap_audio="{escape(press_pcap)}"/></action></nop>',
        ]
    talk_wait = "" if talk_ms is None else f' timeout="{talk_ms}" ontimeout="hangup"'
    body += [
        f'  <recv request="BYE"{talk_wait}/>',
        f'  <send next="end">{_cdata(ok_bye)}</send>',
        '  <label id="hangup"/>',
        f'  <send retrans="500">{_cdata(bye)}</send>',
        '  <recv response="200"/>',
        '  <label id="end"/>',
    ]
    return _wrap("agent", body)


def _wrap(name: str, body: list[str]) -> str:
    lines = "\n".join(body)
    return (
        f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="callflow {name}">\n'
        f"{lines}\n</scenario>\n"
    )
