from collections.abc import Awaitable
from typing import Any, Callable

from typing_extensions import TypeAlias

__version__: str

def probe_io() -> dict[str, object]: ...
def select_backend(choice: str = "auto") -> tuple[str, str]: ...

class TLSConfigError(ValueError): ...

class TLSContext:
    def __init__(
        self,
        certfile: str,
        keyfile: str = "",
        password: str = "",
        ca_certs: str = "",
        cert_reqs: int = 0,
        ciphers: str = "",
        version: int = 17,
    ) -> None: ...

class Exchange:
    def receive(self) -> Awaitable[dict[str, Any]]: ...
    def send(self, message: dict[str, Any]) -> Awaitable[None]: ...
    def finish(self, error: BaseException | None) -> None: ...

class WebSocket:
    def receive(self) -> Awaitable[dict[str, Any]]: ...
    def send(self, message: dict[str, Any]) -> Awaitable[None]: ...
    def finish(self, error: BaseException | None) -> None: ...

class ClientDisconnected(OSError): ...

# Config.trusted_proxies(): (everyone, [(packed address, zone)], [(packed network, packed mask)], [literal]).
TrustedProxies: TypeAlias = tuple[bool, list[tuple[bytes, str]], list[tuple[bytes, bytes]], list[bytes]]

class Worker:
    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        loop: Any,
        run_asgi: Callable[..., Awaitable[None]],
        io: str = "auto",
        root_path: str = "",
        state: dict[str, Any] | None = None,
        access_log: Callable[[str, str, str, str, int], None] | None = None,
        keep_alive_timeout: float = 5.0,
        header_timeout: float = 30.0,
        limit_request_line: int = 8192,
        limit_request_fields: int = 100,
        limit_request_field_size: int = 32768,
        max_body_size: int = 0,
        server_header: bool = True,
        date_header: bool = True,
        default_headers: list[tuple[bytes, bytes]] = ...,
        limit_concurrency: int = 0,
        warn: Callable[[str], None] | None = None,
        scheme: str = "http",
        ring: Any = None,
        trusted_proxies: TrustedProxies | None = None,
        tls: TLSContext | None = None,
        reset_contextvars: bool = False,
        ws: str = "auto",
        ws_max_size: int = 16777216,
        ws_max_queue: int = 32,
        ws_ping_interval: float | None = 20.0,
        ws_ping_timeout: float | None = 20.0,
        ws_per_message_deflate: bool = True,
        send_timeout: float = 60.0,
    ) -> None: ...
    @property
    def backend(self) -> str: ...
    @property
    def backend_reason(self) -> str: ...
    @property
    def active_requests(self) -> int: ...
    @property
    def open_connections(self) -> int: ...
    def add_listener(self, fd: int, scheme: str = "http", shared: bool = False) -> None: ...
    def start(self) -> None: ...
    def poll(self) -> None: ...
    def flush(self) -> None: ...
    def tick(self) -> None: ...
    def stop_accepting(self) -> None: ...
    def shutdown(self) -> None: ...
    def close_all(self) -> None: ...
    def disconnect_responding(self) -> None: ...
    def detach(self) -> None: ...
    def stats(self) -> dict[str, int]: ...
