"""A FastAPI app exercising routing, validation, streaming and background tasks."""

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI()
background_log: list[str] = []


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "double": item.price * 2}


@app.get("/stream")
async def stream():
    async def numbers():
        for i in range(5):
            yield f"{i}\n".encode()

    return StreamingResponse(numbers(), media_type="text/plain")


@app.post("/background")
async def background(tasks: BackgroundTasks, word: str):
    tasks.add_task(background_log.append, word)
    return {"queued": word}


@app.get("/background")
async def background_done():
    return {"log": background_log}
