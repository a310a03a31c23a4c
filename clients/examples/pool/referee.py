"""The referee: counts, independently of Baton, how many workers use the pool
at once. A JSON file guarded by flock(2), shared by the worker processes of
this machine: {"in_use": now, "max": highest seen, "uses": total entries}."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path


class Referee:
    def __init__(self, path: Path) -> None:
        self.path = path

    def reset(self) -> None:
        self.path.write_text(json.dumps({"in_use": 0, "max": 0, "uses": 0}))

    def _update(self, delta: int) -> dict:
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = json.loads(os.pread(fd, 1 << 16, 0))
            state["in_use"] += delta
            if delta > 0:
                state["uses"] += 1
                state["max"] = max(state["max"], state["in_use"])
            data = json.dumps(state).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            return state
        finally:
            os.close(fd)  # releases the flock

    def enter(self) -> int:
        """A worker starts using a slot; returns how many are in use now."""
        return self._update(+1)["in_use"]

    def leave(self) -> None:
        self._update(-1)

    def read(self) -> dict:
        return json.loads(self.path.read_text())
