"""FastAPI app as most tutorials write it: a plain `def` endpoint (run in anyio's
worker threads), JSON response, a typed path parameter and an optional query parameter."""

from typing import Optional

from fastapi import FastAPI

app = FastAPI()


@app.get("/items/{item_id}")
def read_item(item_id: int, q: Optional[str] = None):
    return {"item_id": item_id, "q": q}
