"""The baseline: a bare Flask app under gunicorn (same worker settings as Shipyard) calling
the same trivial function in-process."""

from flask import Flask, jsonify, request


def add(a, b=1):
    return {"total": a + b}


app = Flask(__name__)


@app.post("/call")
def call():
    return jsonify({"outputs": add(**request.get_json())})
