"""The benchmark baseline: a trivial FastAPI endpoint that reads a request body and answers small XML."""
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()
ANSWER = b'<?xml version="1.0" encoding="UTF-8"?><Response xmlns="urn:directlink:v1"><Result code="OK"/></Response>'


@app.post("/v1/messages")
async def echo(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/xml")


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}
