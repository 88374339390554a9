"""RTP streams SIPp's play_pcap_audio can send: RFC 4733 DTMF events and G.711 audio."""

from __future__ import annotations

import math
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


def _ulaw(sample: int) -> int:
    """Encode one 16-bit linear sample as G.711 mu-law."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def audio_packets(seconds: float, ssrc: int = 0x43464C41) -> list[tuple[float, bytes]]:
    """PCMU RTP packets (20 ms each) of a 440 Hz tone lasting SECONDS."""
    frame = bytes(
        _ulaw(int(6000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(160)
    )  # 20 ms at 8 kHz: 440 Hz fits 8.8 periods; the small seam every frame is harmless
    packets = []
    for n in range(int(seconds * 1000 / PACKET_MS)):
        rtp = struct.pack("!BBHII", 0x80, 0x80 if n == 0 else 0, n & 0xFFFF, n * 160, ssrc)
        packets.append((n * PACKET_MS / 1000.0, _frame(rtp + frame)))
    return packets


def write_audio_pcap(path: Path, seconds: float) -> Path:
    """Write a pcap that plays SECONDS of audio."""
    return _write(path, audio_packets(seconds))


def write_dtmf_pcap(path: Path, digits: str) -> Path:
    """Write a pcap (Ethernet link type) that plays the digits in order."""
    return _write(path, dtmf_packets(digits))


def _write(path: Path, packets: list[tuple[float, bytes]]) -> Path:
    """Write timed frames as a classic pcap file."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for at, frame in packets:
        sec, usec = int(at), round((at - int(at)) * 1_000_000)
        out.append(struct.pack("<IIII", 1_700_000_000 + sec, usec, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))
    return path
