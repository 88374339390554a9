"""A finished call waiting for its CDR commit holds its rows, not its routing state."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from callflow.bench import inproc
from callflow.bench.configs import write_config
from callflow.call.inbound import InboundCall
from callflow.daemon import Daemon, DaemonOptions


def _alive(cls: type) -> int:
    """Instances of ``cls`` still referenced (collected garbage does not count)."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is cls)


async def test_calls_waiting_for_their_commit_let_their_routing_state_go(tmp_path: Path) -> None:
    config = write_config(tmp_path / "rules.yaml", numbers=10, targets=10)
    daemon = Daemon(DaemonOptions(config=config, database=tmp_path / "cdr.sqlite3", port=0,
                                  node="test", grace=2.0, watch_interval=0))  # fmt: skip
    await daemon.start()
    try:
        server, store = daemon._server, daemon.store
        assert server is not None
        store._batch_interval = 30.0  # no commit until flushed: every call waits for it
        await inproc._drive(server, inproc._headers(20), concurrency=20)  # every channel closed
        await asyncio.sleep(0.05)
        assert server.active == 20  # each call's handler waits for its row's commit
        assert _alive(InboundCall) == 0
        await store.flush()
        for _ in range(200):
            if not server.active:
                break
            await asyncio.sleep(0.01)
        assert server.active == 0
    finally:
        await daemon.stop()
