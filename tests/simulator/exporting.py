"""Helpers that drive the export API the way a careful client does."""

from __future__ import annotations

from typing import Any

import orjson

from iterable_simulator import timefmt

from .conftest import Client, FakeClock

JSONL = "application/x-json-stream"


async def start(c: Client, data_type: str, start: float | None, end: float | None, **extra: Any) -> int:
    payload: dict[str, Any] = {"dataTypeName": data_type, "outputFormat": JSONL, **extra}
    if start is not None:
        payload["startDateTime"] = timefmt.iterable_str(start)
    if end is not None:
        payload["endDateTime"] = timefmt.iso_str(end)
    status, body = await c.post("/api/export/start", payload)
    assert status == 200, body
    return body["jobId"]


async def wait_completed(
    c: Client, clock: FakeClock, job_id: int, step: float = 1.0, max_steps: int = 1000
) -> dict[str, Any]:
    for _ in range(max_steps):
        status, body, _ = await c.get(f"/api/export/{job_id}/files")
        assert status == 200, body
        if body["jobState"] in ("completed", "failed"):
            return body
        clock.advance(step)
    raise AssertionError("job never finished")


async def read_all(c: Client, job_id: int) -> tuple[list[str], list[bytes]]:
    """Page the file list with startAfter and download every file; returns (file names, lines)."""
    names: list[str] = []
    lines: list[bytes] = []
    after: str | None = None
    while True:
        _, body, _ = await c.get(
            f"/api/export/{job_id}/files", params={"startAfter": after} if after else None
        )
        if not body["files"]:
            return names, lines
        for f in body["files"]:
            async with c.session.get(f["url"]) as resp:
                assert resp.status == 200
                lines += (await resp.read()).splitlines()
            names.append(f["file"])
            after = f["file"]


def canon(records: list[Any]) -> list[bytes]:
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records)
