from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest_asyncio

from iterable_simulator import Simulator, SimulatorConfig

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Client:
    """Thin aiohttp wrapper that sends the simulator's key unless told otherwise."""

    def __init__(self, sim: Simulator, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.session = session

    def headers(self, key: str | None) -> dict[str, str]:
        return {"Api-Key": key} if key is not None else {}

    async def get(
        self, path: str, params: Any = None, key: str | None = "default"
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        key = self.sim.api_key if key == "default" else key
        url = path if path.startswith("http") else self.sim.base_url + path
        async with self.session.get(url, params=params, headers=self.headers(key)) as resp:
            body = await resp.read()
            return resp.status, _decode(resp, body), resp

    async def post(self, path: str, payload: Any) -> tuple[int, Any]:
        async with self.session.post(
            self.sim.base_url + path, json=payload, headers=self.headers(self.sim.api_key)
        ) as resp:
            return resp.status, _decode(resp, await resp.read())

    async def delete(self, path: str) -> tuple[int, Any]:
        async with self.session.delete(
            self.sim.base_url + path, headers=self.headers(self.sim.api_key)
        ) as resp:
            return resp.status, _decode(resp, await resp.read())


def _decode(resp: aiohttp.ClientResponse, body: bytes) -> Any:
    if resp.content_type == "application/json":
        import orjson

        return orjson.loads(body)
    return body.decode()


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[Callable[..., Any]]:
    """make_client(**SimulatorConfig kwargs) -> Client bound to a started simulator."""
    sims: list[Simulator] = []
    session = aiohttp.ClientSession()

    async def factory(**kwargs: Any) -> Client:
        kwargs.setdefault("enforce_rate_limits", False)
        sim = Simulator(SimulatorConfig(**kwargs))
        await sim.start()
        sims.append(sim)
        return Client(sim, session)

    yield factory
    await session.close()
    for sim in sims:
        await sim.stop()
