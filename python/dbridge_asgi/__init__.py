"""dbridge-asgi: an ASGI server with a C++ core (io_uring reactor, strict HTTP/1.1)."""

from dbridge_asgi._core import __version__

__all__ = ["__version__"]
