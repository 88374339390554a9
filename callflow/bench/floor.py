"""The floor: a minimal raw-asyncio FastAGI server sending the daemon's commands with no logic.

Per call it sends exactly what ``callflow.call.inbound`` sends for a call answered by its first
target: EXEC Dial (which runs [callflow-dialing] first for the campaign and target variables) and
one GET FULL VARIABLE for the outcome (DIALSTATUS, HANGUPCAUSE, the agent's answer time); SET
VARIABLE CALLFLOW_STATUS done only if the Dial was not answered (the dialplan reads
DIALSTATUS=ANSWER as finished). Then it half-closes and reads to EOF (absorbing the final HANGUP).
No header parsing, no attribution, no enrichment, no CDR, no logging: the cost of the protocol.
"""

from __future__ import annotations

import asyncio

__all__ = ["COMMANDS", "DONE", "command", "handle", "start_floor"]

#: The command lines the daemon sends for one call answered by its first target, in order.
COMMANDS: tuple[bytes, ...] = (
    b'EXEC "Dial" "PJSIP/agent1,15,U(callflow-answered)'
    b'B(callflow-dialing^s^1(spring-promo^alice))"\n',
    b'GET FULL VARIABLE "${DIALSTATUS}|${HANGUPCAUSE}|${SHARED(CALLFLOW_AGENT_ANSWERED_AT)}'
    b'|${DIALEDPEERNUMBER}|${SHARED(CALLFLOW_ACCEPTED_AT)}"\n',
)
#: Sent only when the Dial was not answered, as the daemon does.
DONE = b'SET VARIABLE "CALLFLOW_STATUS" "done"\n'


async def command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> bytes:
    """Send one command and return its reply line, skipping HANGUP lines."""
    writer.write(line)
    while True:
        reply = await reader.readline()
        if not reply:
            raise ConnectionError("peer closed")
        if reply != b"HANGUP\n":
            return reply


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one FastAGI call with the daemon's command sequence and nothing else."""
    try:
        await reader.readuntil(b"\n\n")
        for line in COMMANDS:
            reply = await command(reader, writer, line)
        if b"(ANSWER|" not in reply:  # not answered: tell the dialplan we are done
            await command(reader, writer, DONE)
        writer.write_eof()
        while await reader.read(65536):
            pass
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def start_floor(
    host: str = "127.0.0.1", port: int = 0, backlog: int = 4096
) -> asyncio.Server:
    """Start the floor server and return it (port 0 picks a free port)."""
    return await asyncio.start_server(handle, host, port, backlog=backlog)


if __name__ == "__main__":
    import sys

    from callflow.bench.serve import main

    sys.exit(main(["floor", *sys.argv[1:]]))
