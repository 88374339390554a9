"""A scripted Asterisk-side FastAGI peer and header builder, for tests of AGI handlers."""

from __future__ import annotations

import asyncio

__all__ = ["HEADER", "HEADER_ENV", "SCRIPT", "FakeAsterisk", "build_header"]

SCRIPT = "inbound?dnis=8005550001&x=1"

# The environment Asterisk 22 sends for AGI(agi://127.0.0.1/inbound?dnis=...,first,second ...).
HEADER_ENV: list[tuple[str, str]] = [
    ("agi_network", "yes"),
    ("agi_network_script", SCRIPT),
    ("agi_request", f"agi://127.0.0.1/{SCRIPT}"),
    ("agi_channel", "PJSIP/trunk-00000001"),
    ("agi_language", "en"),
    ("agi_type", "PJSIP"),
    ("agi_uniqueid", "1732280000.1"),
    ("agi_version", "22.1.0"),
    ("agi_callerid", "15551234567"),
    ("agi_calleridname", "Jane Doe"),
    ("agi_callingpres", "0"),
    ("agi_callingani2", "0"),
    ("agi_callington", "0"),
    ("agi_callingtns", "0"),
    ("agi_dnid", "8005550001"),
    ("agi_rdnis", "unknown"),
    ("agi_context", "from-trunk"),
    ("agi_extension", "8005550001"),
    ("agi_priority", "2"),
    ("agi_enhanced", "0.0"),
    ("agi_accountcode", ""),
    ("agi_threadid", "140012345678912"),
    ("agi_arg_1", "first"),
    ("agi_arg_2", "second, with (parens)"),
]


def build_header(script: str | None = SCRIPT, **overrides: str) -> bytes:
    """Encode a FastAGI header the way res_agi.c writes it ("key: value\\n", blank line)."""
    env = dict(HEADER_ENV)
    if script is None:
        env.pop("agi_network_script")
    else:
        env["agi_network_script"] = script
    env.update({f"agi_{key}": value for key, value in overrides.items()})
    return b"".join(f"{k}: {v}\n".encode() for k, v in env.items()) + b"\n"


HEADER = build_header()


class FakeAsterisk:
    """The Asterisk side of a FastAGI connection, driven line by line from a test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wrap an open connection."""
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, header: bytes | None = HEADER) -> FakeAsterisk:
        """Connect to a server on loopback and send ``header`` (if any)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        fake = cls(reader, writer)
        if header is not None:
            await fake.send(header)
        return fake

    async def send(self, data: bytes) -> None:
        """Write raw bytes."""
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, *lines: str) -> None:
        """Write reply lines, each terminated by a newline."""
        await self.send("".join(line + "\n" for line in lines).encode())

    async def read_command(self, wait: float = 2.0) -> str:
        """Read one command line (without its newline); "" means EOF."""
        async with asyncio.timeout(wait):
            line = await self.reader.readline()
        return line.decode("utf-8", "surrogateescape").removesuffix("\n")

    async def expect(self, command: str, *replies: str) -> None:
        """Assert the next command line and answer it."""
        assert await self.read_command() == command
        await self.reply(*replies)

    async def read_to_eof(self, wait: float = 2.0) -> bytes:
        """Read everything until the server closes its side."""
        async with asyncio.timeout(wait):
            return await self.reader.read()

    def close(self) -> None:
        """Close the connection."""
        self.writer.close()
