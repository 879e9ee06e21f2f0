"""A FastAPI WebSocket endpoint and a Starlette WebSocketEndpoint."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.endpoints import WebSocketEndpoint

app = FastAPI()
seen = []


@app.websocket("/chat/{room}")
async def chat(ws: WebSocket, room: str):
    await ws.accept(subprotocol="chat.v1" if "chat.v1" in ws.scope["subprotocols"] else None)
    try:
        while True:
            text = await ws.receive_text()
            await ws.send_json({"room": room, "echo": text, "q": ws.query_params.get("q")})
    except WebSocketDisconnect as e:
        seen.append(e.code)


@app.websocket("/deny")
async def deny(ws: WebSocket):
    await ws.close(code=1008)


@app.websocket_route("/endpoint")
class Echo(WebSocketEndpoint):
    encoding = "bytes"

    async def on_receive(self, ws, data):
        await ws.send_bytes(data[::-1])

    async def on_disconnect(self, ws, close_code):
        seen.append(close_code)


@app.get("/seen")
def get_seen():
    return seen
