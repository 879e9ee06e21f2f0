"""A small FastAPI service served by saltare (examples/fastapi/saltare.yaml)."""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="saltare example")


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/")
async def root():
    return {"hello": "saltare"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"created": item.name, "total": round(item.price * 1.2, 2)}
