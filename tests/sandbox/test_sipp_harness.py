"""The SIPp harness tells a listening agent without touching its port."""

from __future__ import annotations

import socket

from callflow.testing.sipp import udp_bound


def test_udp_bound_sees_a_socket_bound_to_the_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.11", 0))
        port = s.getsockname()[1]
        assert udp_bound("127.0.0.11", port)
        assert not udp_bound("127.0.0.12", port)
    assert not udp_bound("127.0.0.11", port)


def test_udp_bound_counts_a_wildcard_bind() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        assert udp_bound("127.0.0.13", s.getsockname()[1])
