"""Small helpers for tests that talk to real servers."""

from __future__ import annotations

import json

import httpx


def post_json(url: str, body: object) -> httpx.Response:
    """POST ``body`` as JSON *allowing* NaN (httpx refuses to encode it), to test that a
    server rejects what a careless client can send."""
    return httpx.post(url, content=json.dumps(body), headers={"content-type": "application/json"})
