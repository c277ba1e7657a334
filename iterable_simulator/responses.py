"""Response bodies in Iterable's (and S3's, and the gateway's) shapes."""

from __future__ import annotations

import math
from typing import Any

import orjson
from aiohttp import web

from . import timefmt
from .faults import Fault

GENERIC_ERROR_MSG = "An error occurred. Please try again later."
_GATEWAY_TITLES = {502: "502 Bad Gateway", 504: "504 Gateway Time-out", 414: "414 Request-URI Too Large"}


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers
    )


def error(status: int, code: str, msg: str, params: Any = None) -> web.Response:
    return json_response({"msg": msg, "code": code, "params": params}, status=status)


def bad_params(msg: str) -> web.Response:
    return error(400, "BadParams", msg)


def not_found(msg: str = "Route not found") -> web.Response:
    return error(404, "NotFound", msg)


def bad_api_key() -> web.Response:
    return error(401, "BadApiKey", "Invalid API key")


def rate_limited(retry_after_s: float | None = None) -> web.Response:
    headers = {"Retry-After": str(math.ceil(retry_after_s))} if retry_after_s is not None else None
    resp = error(429, "RateLimitExceeded", "Rate limit exceeded")
    if headers:
        resp.headers.update(headers)
    return resp


def generic_500() -> web.Response:
    return error(500, "GenericError", GENERIC_ERROR_MSG)


def gateway_html(status: int) -> web.Response:
    title = _GATEWAY_TITLES.get(status, f"{status} Error")
    body = f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    return web.Response(text=body, status=status, content_type="text/html")


def for_fault(fault: Fault, retry_after_s: float) -> web.Response | None:
    """The response for an HTTP-level fault that replaces the real answer (None for drop/slow)."""
    match fault:
        case Fault.RATE_LIMIT:
            return rate_limited()
        case Fault.RATE_LIMIT_RETRY_AFTER:
            return rate_limited(retry_after_s)
        case Fault.GENERIC_500:
            return generic_500()
        case Fault.HTTP_500:
            return web.Response(text="Internal Server Error", status=500, content_type="text/plain")
        case Fault.HTTP_502 | Fault.HTTP_504:
            return gateway_html(502 if fault is Fault.HTTP_502 else 504)
        case Fault.HTTP_503:
            return error(503, "GenericError", "Request timeout. Try again later.")
        case Fault.EXPIRED_URL:
            return s3_expired(0, 0.0, 0.0)
        case _:
            return None


def s3_error(code: str, message: str, extra: str = "") -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
        "<RequestId>4442587FB7D0A2F9</RequestId><HostId>sim/host/id=</HostId></Error>"
    )
    return web.Response(text=body, status=403, content_type="application/xml")


def s3_expired(expires_s: int, expired_at: float, now: float) -> web.Response:
    extra = (
        f"<X-Amz-Expires>{expires_s}</X-Amz-Expires>"
        f"<Expires>{timefmt.to_dt(expired_at).strftime('%Y-%m-%dT%H:%M:%SZ')}</Expires>"
        f"<ServerTime>{timefmt.to_dt(now).strftime('%Y-%m-%dT%H:%M:%SZ')}</ServerTime>"
    )
    return s3_error("AccessDenied", "Request has expired", extra)


def csv_response(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/csv")
