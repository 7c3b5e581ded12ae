"""The apps of the web benchmark (bench/web/run.sh): FastAPI and Flask JSON hellos."""

from fastapi import FastAPI
from flask import Flask, jsonify

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


wsgi = Flask(__name__)


@wsgi.get("/")
def wsgi_hello():  # type: ignore[no-untyped-def]
    return jsonify(message="hello")
