"""The FastAPI scenarios of the benchmarks: a small JSON GET and a 1 KB JSON POST."""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


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
