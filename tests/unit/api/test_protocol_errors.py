"""aiohttp's protocol-level errors are JSON: a real server from app_runner, raw bytes over a real
socket (aiohttp's client refuses to send most of these requests)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.http_parser import HttpRequestParserPy

from stocksync.api.protocol_errors import app_runner
from stocksync.api.responses import json_response
from stocksync.domain.limits import SKU_MAX

Answer = tuple[int, str, dict[str, Any]]

HOST = b"Host: localhost\r\n"


def tiny_app() -> web.Application:
    async def atp(request: web.Request) -> web.Response:
        return json_response({"sku": request.match_info["sku"]})

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app = web.Application()
    app.router.add_get("/v1/atp/{sku}", atp)
    app.router.add_get("/boom", boom)
    return app


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), headers["content-type"], json.loads(body)


def send(request: bytes, **runner_kwargs: Any) -> Answer:
    """`request`'s answer from a server of tiny_app, which closes the connection after it."""

    async def go() -> bytes:
        runner = app_runner(tiny_app(), access_log=None, **runner_kwargs)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(request)
                await writer.drain()
                return await asyncio.wait_for(reader.read(), 10)
            finally:
                writer.close()
        finally:
            await runner.cleanup()

    return parse(asyncio.run(go()))


@pytest.fixture(params=["c", "python"], autouse=True)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test with aiohttp's C parser (what runs) and its pure-Python one
    (AIOHTTP_NO_EXTENSIONS=1): their errors differ in what they carry."""
    if request.param == "python":
        monkeypatch.setattr("aiohttp.web_protocol.HttpRequestParser", HttpRequestParserPy)
    yield request.param


def test_a_normal_request_is_answered() -> None:
    status, content_type, body = send(
        b"GET /v1/atp/SKU-1 HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
    )
    assert (status, content_type, body) == (200, "application/json", {"sku": "SKU-1"})


def test_an_over_long_request_line_is_a_json_error() -> None:
    status, content_type, body = send(
        b"GET /v1/atp/" + b"S" * 20_000 + b" HTTP/1.1\r\n" + HOST + b"\r\n"
    )
    assert (status, content_type) == (400, "application/json")
    assert body["error"] == "request_line_too_long"
    assert body["limit"] == 8190
    assert "8190 bytes" in body["message"]
    assert f"at most {SKU_MAX} characters" in body["message"]


def test_the_limit_told_is_the_one_the_runner_was_given() -> None:
    status, _, body = send(
        b"GET /v1/atp/" + b"S" * 300 + b" HTTP/1.1\r\n" + HOST + b"\r\n", max_line_size=256
    )
    assert (status, body["error"], body["limit"]) == (400, "request_line_too_long", 256)


def test_an_over_long_header_is_a_json_error() -> None:
    status, content_type, body = send(
        b"GET /v1/atp/SKU-1 HTTP/1.1\r\n" + HOST + b"X-Big: " + b"v" * 20_000 + b"\r\n\r\n"
    )
    assert (status, content_type) == (400, "application/json")
    assert body["error"] == "headers_too_large"
    assert body["limit"] == 8190
    assert "8190 bytes" in body["message"]


def test_too_many_headers_are_a_json_error() -> None:
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(200))
    status, content_type, body = send(b"GET /v1/atp/SKU-1 HTTP/1.1\r\n" + HOST + many + b"\r\n")
    assert (status, content_type) == (400, "application/json")
    assert (body["error"], body["limit"]) == ("headers_too_large", 128)


@pytest.mark.parametrize(
    "garbage",
    [
        b"BLAH\r\n\r\n",
        b"GET /v1/atp/SKU-1 HTTP/9\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\r\n\r\n",  # the start of a TLS ClientHello
    ],
    ids=["no-method", "bad-version", "tls"],
)
def test_a_request_that_is_not_http_is_a_json_400(garbage: bytes) -> None:
    status, content_type, body = send(garbage)
    assert (status, content_type) == (400, "application/json")
    assert body["error"] == "bad_request"
    assert body["message"].startswith("not a valid HTTP/1.1 request (")


def test_a_handler_exception_is_a_json_500_that_names_no_internals() -> None:
    status, content_type, body = send(b"GET /boom HTTP/1.1\r\n" + HOST + b"\r\n")
    assert (status, content_type) == (500, "application/json")
    assert body["error"] == "internal_error"
    assert "secret" not in body["message"]
