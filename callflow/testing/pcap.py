"""RFC 4733 (RFC 2833) DTMF as a pcap stream that SIPp's play_pcap_audio can send."""

from __future__ import annotations

import struct
from pathlib import Path

EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
PAYLOAD_TYPE = 101
PACKET_MS = 20
TONE_PACKETS = 8  # 160 ms of tone
END_REPEATS = 3  # the end packet is sent three times, as RFC 4733 asks
GAP_MS = 140  # pause between two digits


def _ipv4_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(payload: bytes, src_port: int = 6000, dst_port: int = 6000) -> bytes:
    """Wrap an RTP payload in Ethernet/IPv4/UDP headers (SIPp rewrites addresses and ports)."""
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
        bytes([127, 0, 0, 2]), bytes([127, 0, 0, 1]),
    )  # fmt: skip
    ip = ip[:10] + struct.pack("!H", _ipv4_checksum(ip)) + ip[12:]
    return b"\x00" * 12 + b"\x08\x00" + ip + udp


def dtmf_packets(digits: str, ssrc: int = 0x43464C57) -> list[tuple[float, bytes]]:
    """RTP event packets (send time in seconds, frame) for a digit string; digits may repeat."""
    packets: list[tuple[float, bytes]] = []
    seq, when_ms = 1000, 0
    samples_per_ms = 8
    for digit in digits:
        try:
            event = EVENTS[digit.upper()]
        except KeyError:
            raise ValueError(f"not a DTMF digit: {digit!r}") from None
        timestamp = 8000 + when_ms * samples_per_ms
        for n in range(1, TONE_PACKETS + 1 + END_REPEATS):
            end = n > TONE_PACKETS
            duration = min(n, TONE_PACKETS) * PACKET_MS * samples_per_ms
            marker = 0x80 if n == 1 else 0
            rtp = struct.pack(
                "!BBHIIBBH", 0x80, marker | PAYLOAD_TYPE, seq & 0xFFFF, timestamp, ssrc,
                event, (0x80 if end else 0) | 10, duration,
            )  # fmt: skip
            at_ms = when_ms + min(n, TONE_PACKETS) * PACKET_MS
            packets.append((at_ms / 1000.0, _frame(rtp)))
            if not end or n == TONE_PACKETS + END_REPEATS:
                seq += 1
        when_ms += TONE_PACKETS * PACKET_MS + GAP_MS
    return packets


def write_dtmf_pcap(path: Path, digits: str) -> Path:
    """Write a pcap (Ethernet link type) that plays the digits in order."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for at, frame in dtmf_packets(digits):
        sec, usec = int(at), round((at - int(at)) * 1_000_000)
        out.append(struct.pack("<IIII", 1_700_000_000 + sec, usec, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))
    return path
