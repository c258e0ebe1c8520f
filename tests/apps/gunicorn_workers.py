"""A DBridgeWorker subclass that passes our own options through CONFIG_KWARGS.

`gunicorn -k gunicorn_workers.UringAsyncioWorker --chdir tests/apps ...`
"""

from typing import Any, ClassVar

from dbridge_asgi.workers import DBridgeWorker


class UringAsyncioWorker(DBridgeWorker):
    # Both differ from what DBridgeWorker picks by itself on a shared socket (epoll, uvloop).
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"io": "uring", "loop": "asyncio"}
