"""The CDR writer process: SQLite writes off the event loop's process, fed over a socket pair.

SQLite releases the GIL around every statement step, so a writer *thread* hands the GIL back
and forth with the event loop many times per call (measured: ~10 context switches and a third
of the loop's CPU per call at 500 calls/s). A child process owns the batch-writing connection
instead; the daemon sends it whole batches and gets back which writes SQLite refused.

Wire format, both ways: a 4-byte big-endian length, then a pickle. The child answers each
batch with ``("ok", refusals)`` or ``("error", class name, message)`` (the transaction failed as
a whole and was rolled back). It ignores SIGINT and SIGTERM, so a drain at shutdown can finish,
and exits when the daemon closes its end (or dies).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import sqlite3
import struct
import sys
from collections.abc import Sequence
from typing import Any, Final, Self

from callflow.store.batch import Refusals, Write, write_batch
from callflow.store.connection import StrPath
from callflow.store.errors import StoreError
from callflow.store.schema import PRAGMAS

__all__ = ["WriterGone", "WriterProcess", "main", "sqlite_error"]

_LEN: Final = struct.Struct("!I")
_READY: Final = "ready"
_STOP_TIMEOUT: Final = 10.0
#: The child's command (``-m`` would import this module twice: the package imports it too).
_CHILD: Final = "import sys; from callflow.store.writerproc import main; sys.exit(main())"


class WriterGone(StoreError):
    """The writer process exited (or could not start); the batch was not acknowledged."""


def _frame(message: object) -> bytes:
    """One message on the wire: length prefix and pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(body)) + body


def sqlite_error(name: str, message: str) -> sqlite3.Error:
    """Rebuild the child's SQLite exception (its class by name) in the daemon."""
    cls = getattr(sqlite3, name, None)
    if not (isinstance(cls, type) and issubclass(cls, sqlite3.Error)):
        cls = sqlite3.Error
    return cls(message)


class WriterProcess:
    """The daemon's handle on its writer child: start it, send batches, stop it."""

    def __init__(self, path: StrPath) -> None:
        """Remember the database; ``start`` spawns the child."""
        self._path = os.fspath(path)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        #: Children started so far (a child that dies is replaced on the next batch).
        self.spawns = 0

    @classmethod
    async def start(cls, path: StrPath) -> Self:
        """Spawn the writer child for ``path`` and wait until it has opened the database."""
        proc = cls(path)
        await proc._spawn()
        return proc

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    async def write(self, writes: Sequence[Write]) -> Refusals:
        """Have the child commit one batch; return the refused writes by index.

        Raises the child's sqlite3 error when the transaction failed as a whole, and
        ``WriterGone`` when the child died (a new one is started for the next batch).
        """
        if self._writer is None:
            await self._spawn()
        reply = await self._request(list(writes))
        if reply[0] == "ok":
            refusals: Refusals = reply[1]
            return refusals
        raise sqlite_error(reply[1], reply[2])

    async def stop(self) -> None:
        """Close the child's socket (it exits once its current batch is done) and reap it."""
        await self._drop()

    async def _request(self, message: object) -> Any:
        """Send one message and read the child's reply."""
        assert self._reader is not None and self._writer is not None
        try:
            self._writer.write(_frame(message))
            size = _LEN.unpack(await self._reader.readexactly(_LEN.size))[0]
            return pickle.loads(await self._reader.readexactly(size))
        except (OSError, asyncio.IncompleteReadError) as exc:
            code = await self._drop()
            raise WriterGone(f"the CDR writer process exited (status {code})") from exc

    async def _spawn(self) -> None:
        """Start a child on one end of a new socket pair and wait for its ready message."""
        mine, theirs = socket.socketpair()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _CHILD, self._path, str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self.spawns += 1
        self._reader, self._writer = await asyncio.open_connection(sock=mine)
        try:
            size = _LEN.unpack(await self._reader.readexactly(_LEN.size))[0]
            hello = pickle.loads(await self._reader.readexactly(size))
        except (OSError, asyncio.IncompleteReadError) as exc:
            code = await self._drop()
            raise WriterGone(f"the CDR writer process did not start (status {code})") from exc
        if hello[0] != _READY:
            await self._drop()
            raise sqlite_error(hello[1], hello[2])

    async def _drop(self) -> int | None:
        """Close our end and wait for the child to exit (killing it if it hangs)."""
        writer, proc = self._writer, self._proc
        self._reader = self._writer = self._proc = None
        if writer is not None:
            writer.close()
        if proc is None:
            return None
        try:
            return await asyncio.wait_for(proc.wait(), _STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            return await proc.wait()


# -- the child --------------------------------------------------------------------------------


def _serve(conn: sqlite3.Connection, sock: socket.socket) -> None:
    """Commit each batch that arrives and answer it, until the daemon closes the socket."""
    stream = sock.makefile("rb")
    while len(head := stream.read(_LEN.size)) == _LEN.size:
        size = _LEN.unpack(head)[0]
        body = stream.read(size)
        if len(body) < size:
            return  # the daemon went away mid-message
        writes = pickle.loads(body)
        try:
            reply: tuple[Any, ...] = ("ok", write_batch(conn, writes))
        except sqlite3.Error as exc:
            reply = ("error", type(exc).__name__, str(exc))
        sock.sendall(_frame(reply))


def main(argv: Sequence[str] | None = None) -> int:
    """Child entry point: ``python -c _CHILD DATABASE FD``."""
    path, fd = argv if argv is not None else sys.argv[1:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(fd))
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            conn.execute(pragma)
    except sqlite3.Error as exc:
        sock.sendall(_frame(("error", type(exc).__name__, str(exc))))
        return 1
    sock.sendall(_frame((_READY,)))
    try:
        _serve(conn, sock)
    finally:
        conn.close()
    return 0
