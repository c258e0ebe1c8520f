"""dbridge-asgi: an ASGI server with a C++ core (io_uring reactor, strict HTTP/1.1).

The Python API mirrors uvicorn's: `dbridge_asgi.run(app, ...)`, `Config`, `Server`, `main`.
"""

from dbridge_asgi._core import __version__
from dbridge_asgi.config import Config
from dbridge_asgi.main import main, run
from dbridge_asgi.server import Server

__all__ = ["Config", "Server", "__version__", "main", "run"]
