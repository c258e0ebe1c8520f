"""A FastAPI app that touches the parts of the ASGI path real apps use, for the differential tests.

Served with `--app-dir tests/apps fastapi_app:app` by dbridge-asgi and by uvicorn; every
response must be the same from both. FileResponse serves from the directory named by
$ASGI_TEST_FILES_DIR, where the tests write their files. Module-level records (SSE
disconnects, background tasks) are per server process and read back through endpoints.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import (
    BackgroundTasks,
    Cookie,
    Depends,
    FastAPI,
    File,
    Form,
    Header,
    HTTPException,
    Request,
    Response,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel, Field

FILES_DIR_ENV = "ASGI_TEST_FILES_DIR"
CORS_ORIGIN = "https://app.example"
GZIP_MINIMUM_SIZE = 500


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    # The lifespan state dict: copied into every request's scope["state"] by the server.
    yield {"started_at": time.time(), "lifespan_marker": "set-by-lifespan"}


app = FastAPI(lifespan=lifespan)
app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_SIZE)
app.add_middleware(
    CORSMiddleware,
    allow_origins=[CORS_ORIGIN],
    allow_credentials=True,
    allow_methods=["GET", "POST", "PUT"],
    allow_headers=["x-token", "content-type"],
    expose_headers=["x-total-count"],
    max_age=600,
)


# ---- path, query and body ------------------------------------------------------------------


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []


# FastAPI adds no HEAD to a GET route (Starlette's Route would): asked for explicitly.
@app.api_route("/items/{item_id}", methods=["GET", "HEAD"])
async def read_item(item_id: int, q: str | None = None, limit: int = 10) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "limit": limit}


@app.get("/items")
async def list_items(response: Response) -> list[int]:
    response.headers["x-total-count"] = "3"
    return [1, 2, 3]


@app.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item


@app.put("/items/{item_id}")
async def replace_item(item_id: int, item: Item) -> dict[str, Any]:
    return {"item_id": item_id, "item": item.model_dump()}


@app.get("/paths/{rest:path}")
async def echo_path(rest: str, request: Request) -> dict[str, Any]:
    return {"rest": rest, "path": request.url.path, "query": str(request.query_params)}


# ---- forms and uploads ---------------------------------------------------------------------


@app.post("/form")
async def form(name: Annotated[str, Form()], age: Annotated[int, Form()]) -> dict[str, Any]:
    return {"name": name, "age": age}


@app.post("/upload")
async def upload(file: Annotated[UploadFile, File()], note: Annotated[str, Form()] = "") -> dict[str, Any]:
    data = await file.read()
    return {
        "filename": file.filename,
        "content_type": file.content_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": note,
    }


# ---- headers and cookies -------------------------------------------------------------------


@app.get("/whoami")
async def whoami(
    response: Response,
    x_token: Annotated[str | None, Header()] = None,
    session: Annotated[str | None, Cookie()] = None,
) -> dict[str, Any]:
    response.set_cookie("visited", "yes", httponly=True, samesite="lax", max_age=3600)
    response.set_cookie("flavour", "oatmeal", path="/whoami")
    return {"x_token": x_token, "session": session}


@app.get("/logout")
async def logout(response: Response) -> dict[str, bool]:
    response.delete_cookie("session")
    return {"logged_out": True}


# ---- streaming, files, server-sent events ----------------------------------------------------


@app.get("/stream")
async def stream(n: int = 5) -> StreamingResponse:
    async def numbers() -> AsyncIterator[bytes]:
        for i in range(n):
            yield f"line {i}\n".encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(numbers(), media_type="text/plain")


@app.get("/big")
async def big() -> PlainTextResponse:
    # Larger than GZIP_MINIMUM_SIZE: compressed when the client accepts gzip.
    return PlainTextResponse("".join(f"row {i:05d}: the quick brown fox\n" for i in range(2000)))


@app.get("/big-stream")
async def big_stream() -> StreamingResponse:
    async def rows() -> AsyncIterator[str]:
        for i in range(200):
            yield f"row {i:05d}: jumps over the lazy dog\n"

    return StreamingResponse(rows(), media_type="text/plain")


@app.api_route("/files/{name}", methods=["GET", "HEAD"])
async def serve_file(name: str) -> FileResponse:
    directory = os.environ[FILES_DIR_ENV]
    path = os.path.join(directory, os.path.basename(name))
    if not os.path.isfile(path):
        raise HTTPException(status_code=404, detail="no such file")
    return FileResponse(path)


@app.get("/download/{name}")
async def download(name: str) -> FileResponse:
    directory = os.environ[FILES_DIR_ENV]
    return FileResponse(os.path.join(directory, os.path.basename(name)), filename=f"report-{name}")


# stream id -> what the generator saw: "started", then "disconnected" once it noticed.
sse_streams: dict[str, list[str]] = {}


@app.get("/sse/polling")
async def sse_polling(request: Request, stream_id: str) -> StreamingResponse:
    """The FastAPI/Starlette SSE idiom: poll request.is_disconnected() between events."""
    seen = sse_streams.setdefault(stream_id, [])

    async def events() -> AsyncIterator[str]:
        seen.append("started")
        i = 0
        try:
            while not await request.is_disconnected():
                yield f"id: {i}\nevent: tick\ndata: {i}\n\n"
                i += 1
                await asyncio.sleep(0.05)
            seen.append("disconnected")
        except asyncio.CancelledError:
            # Starlette's own disconnect listener may cancel the stream first.
            seen.append("disconnected")
            raise

    return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-cache"})


@app.get("/sse/endless")
async def sse_endless(stream_id: str) -> StreamingResponse:
    """Never looks: only Starlette's disconnect listener (a receive() that gets
    http.disconnect) can stop it, by cancelling the generator."""
    seen = sse_streams.setdefault(stream_id, [])

    async def events() -> AsyncIterator[str]:
        seen.append("started")
        i = 0
        try:
            while True:
                yield f"id: {i}\nevent: tick\ndata: {i}\n\n"
                i += 1
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            seen.append("disconnected")
            raise

    return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-cache"})


@app.get("/sse/status")
async def sse_status(stream_id: str) -> dict[str, Any]:
    seen = sse_streams.get(stream_id, [])
    return {"started": "started" in seen, "noticed_disconnect": "disconnected" in seen}


# ---- background tasks, dependencies, errors ------------------------------------------------

background_log: list[str] = []


async def remember(entry: str) -> None:
    await asyncio.sleep(0.01)
    background_log.append(entry)


def remember_in_thread(entry: str) -> None:
    background_log.append(f"sync:{entry}")


@app.post("/background")
async def schedule(entry: str, tasks: BackgroundTasks) -> dict[str, str]:
    tasks.add_task(remember, entry)
    tasks.add_task(remember_in_thread, entry)
    return {"scheduled": entry}


@app.get("/background")
async def background_entries() -> list[str]:
    return background_log


def pagination(skip: int = 0, limit: int = 10) -> dict[str, int]:
    return {"skip": skip, "limit": limit}


def require_token(x_token: Annotated[str | None, Header()] = None) -> str:
    if x_token != "secret":
        raise HTTPException(status_code=401, detail="bad token", headers={"WWW-Authenticate": "Bearer"})
    return x_token


@app.get("/deps")
async def with_dependencies(
    page: Annotated[dict[str, int], Depends(pagination)], token: Annotated[str, Depends(require_token)]
) -> dict[str, Any]:
    return {"page": page, "token": token}


@app.get("/teapot")
async def teapot() -> None:
    raise HTTPException(status_code=418, detail={"reason": "short and stout"}, headers={"x-kettle": "no"})


@app.get("/go-home")
async def go_home() -> RedirectResponse:
    return RedirectResponse("/items", status_code=303)


@app.get("/no-content", status_code=204)
async def no_content() -> None:
    return None


# ---- state, threads, time ------------------------------------------------------------------


@app.get("/state")
async def state(request: Request) -> dict[str, Any]:
    started_at = request.state.started_at
    return {
        "started_at_is_float": isinstance(started_at, float),
        "started_at_in_the_past": started_at <= time.time(),
        "lifespan_marker": request.state.lifespan_marker,
    }


@app.get("/sync")
def sync_endpoint() -> dict[str, bool]:
    # A plain def runs in the threadpool, never on the loop's thread.
    return {"in_worker_thread": threading.current_thread() is not threading.main_thread()}


@app.get("/sleep")
async def sleep(seconds: float = 0.1) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


# ---- WebSocket (tests/python/test_websocket.py) ----------------------------------------------


@app.websocket("/ws/echo")
async def websocket_echo(websocket: WebSocket) -> None:
    """Echoes text as text and bytes as bytes; "close" makes the server close with 4000."""
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=offered[0] if offered else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "close":
                await websocket.close(code=4000, reason="asked to")
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


@app.websocket("/ws/json")
async def websocket_json(websocket: WebSocket) -> None:
    await websocket.accept()
    data = await websocket.receive_json()
    await websocket.send_json({"got": data, "path": websocket.url.path})
    await websocket.close()
