"""The event loops a server can run on.

`ring`: the stdlib asyncio loop whose selector is this thread's io_uring ring
(`_core.Ring`): one `io_uring_enter` per loop iteration submits the sends the
callbacks queued and waits, with the GIL released, for the server's sockets and the
loop's own descriptors alike; completions for the server's sockets are handled inside
`select()`. `asyncio`/`uvloop`: a stock loop with the ring's eventfd as a reader. Which
is faster is measured in docs/benchmarks.md; "auto" takes the faster one that works here.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

from . import _core


class RingSelector(selectors._BaseSelectorImpl):  # type: ignore[name-defined]
    """A selectors.BaseSelector over `_core.Ring`: registrations become one-shot polls in the ring."""

    def __init__(self, ring: Any = None) -> None:
        super().__init__()
        self.ring = ring if ring is not None else _core.Ring()
        # The loop calls select() once per iteration: straight into C++.
        self.select = self.ring.select

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = super().register(fileobj, events, data)
        self.ring.watch(key.fd, events, key)
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = super().unregister(fileobj)
        self.ring.unwatch(key.fd)
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        # _BaseSelectorImpl.modify goes through unregister()/register() when the events
        # change; when only the data does, it swaps the key, which the ring hands back.
        old = self.get_key(fileobj)
        key = super().modify(fileobj, events, data)
        if key.events == old.events:
            self.ring.rekey(key.fd, key)
        return key

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:  # noqa: F811
        return self.ring.select(timeout)  # replaced per instance in __init__

    def close(self) -> None:
        super().close()
        self.__dict__.pop("select", None)
        self.ring = None  # the ring closes when the last user (a worker) lets it go


def new_ring_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop on this thread's ring. Raises OSError where io_uring is not usable."""
    return asyncio.SelectorEventLoop(RingSelector())


def loop_ring(loop: asyncio.AbstractEventLoop) -> Any:
    """The `_core.Ring` under `loop` when its selector is a RingSelector, else None."""
    selector = getattr(loop, "_selector", None)
    return selector.ring if isinstance(selector, RingSelector) else None
