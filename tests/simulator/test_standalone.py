from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
import pytest


@pytest.mark.asyncio
async def test_module_prints_base_url_and_stops_on_sigterm():
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "iterable_simulator",
        "--port",
        "0",
        "--seed",
        "7",
        "--project-type",
        "UserID-based",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
        info = json.loads(line)
        async with aiohttp.ClientSession() as session:
            async with session.get(
                info["base_url"] + "/api/channels", headers={"Api-Key": info["api_key"]}
            ) as resp:
                assert resp.status == 200 and (await resp.json())["channels"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
