"""The Simulator: the simulator's state, served over HTTP as Iterable's API."""

from __future__ import annotations

from aiohttp import web

from .app import build_app
from .config import SimulatorConfig
from .state import SimulatorState


class Simulator(SimulatorState):
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(build_app(self), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
