"""A small FastAPI app: what `make run` serves and the README shows.

dbridge-asgi main:app --app-dir examples/hello
curl localhost:8000/
curl 'localhost:8000/items/3?q=blue'
curl -X POST localhost:8000/items -H 'content-type: application/json' -d '{"name": "pen", "price": 1.5}'
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="hello")


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/")
async def hello() -> dict:
    return {"message": "Hello, world!"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict:
    return {"item_id": item_id, "q": q}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item
