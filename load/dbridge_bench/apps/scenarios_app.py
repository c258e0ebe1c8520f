"""The FastAPI app behind the shipped benchmark scenarios (load/dbridge_bench/scenarios.py)."""

import asyncio
import atexit
import os
import tempfile
from typing import Optional

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel

app = FastAPI()

# One 50 KB file for the FileResponse scenario, made at import (each server imports once).
_FILE = os.path.join(tempfile.gettempdir(), f"dbridge-bench-50k-{os.getpid()}.bin")
with open(_FILE, "wb") as f:
    f.write(bytes(range(256)) * 200)
atexit.register(os.unlink, _FILE)

_BYTES: dict[int, bytes] = {}
_CHUNK = b"x" * 100


class Item(BaseModel):
    name: str
    description: str
    price: float
    tags: list[str]


@app.get("/")
async def root():
    return {"message": "Hello, world!"}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "tags": len(item.tags)}


@app.get("/users/{user_id}")
async def user(user_id: int, limit: int = 10, q: Optional[str] = None):
    return {"user_id": user_id, "limit": limit, "q": q}


@app.get("/bytes/{size}")
async def sized(size: int):
    body = _BYTES.get(size)
    if body is None:
        body = _BYTES.setdefault(size, b"b" * size)
    return Response(body, media_type="application/octet-stream")


@app.post("/echo")
async def echo(request: Request):
    return Response(await request.body(), media_type="application/octet-stream")


@app.get("/file")
async def file():
    return FileResponse(_FILE, media_type="application/octet-stream")


async def _chunks():
    for _ in range(100):
        yield _CHUNK


@app.get("/stream")
async def stream():
    return StreamingResponse(_chunks(), media_type="text/plain")


@app.get("/slow")
async def slow():
    await asyncio.sleep(0.01)
    return {"slept": 0.01}


@app.websocket("/ws")
async def ws_echo(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass
