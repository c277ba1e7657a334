"""The connector's stdout, read as Flow's runtime reads it: promptly, by a reader of its own.

The scenarios run the simulator in this process. Were stdout read on the simulator's event loop,
each read would wait for the simulator to finish rendering a file chunk, a 64 KB pipe would fill,
and the connector would block on its checkpoint writes: the benchmark would measure itself. So the
pipe is enlarged and drained by a thread (reads release the GIL), which counts documents and
timestamps them as they arrive, and hands acknowledgements to the event loop. `read_until` runs
the connector this way and reports its peak RSS and CPU."""

import asyncio
import fcntl
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

from flow_driver import ConnectorDriver

CAPTURED = b'{"captured":'
CHECKPOINT = b'{"checkpoint":'
NEW_CHECKPOINT = b"\n" + CHECKPOINT
ACK = orjson.dumps({"acknowledge": {"checkpoints": 1}}) + b"\n"
CHUNK = 1 << 20
PIPE_SIZE = 1 << 20
"""Linux's default /proc/sys/fs/pipe-max-size: what an unprivileged process may ask for."""
F_SETPIPE_SZ = 1031


@dataclass
class Counts:
    """Documents read so far, and when (monotonic seconds since `started`)."""

    documents: int = 0
    first_s: float = 0.0
    first_batch: int = 0
    """Documents that arrived with the first one (the CDK writes them out at each checkpoint)."""
    last_s: float = 0.0


@dataclass
class Finished:
    counts: Counts
    peak_rss_mb: float
    cpu_s: float
    """Of the connector, start-up included."""


async def read_until(
    d: ConnectorDriver, open_request: dict[str, Any], *, done: Callable[[Counts, bytes], bool]
) -> Finished:
    """Runs the connector on `open_request` until `done` (see `ConnectorOutput`), then stops it."""
    output = await ConnectorOutput.start(d, open_request, done=done)
    stderr = asyncio.create_task(drain(output.proc.stderr))
    try:
        counts = await output.finished()
        return Finished(counts, peak_rss_mb(output.proc.pid), cpu_seconds(output.proc.pid))
    finally:
        output.proc.terminate()
        await output.proc.wait()
        output.close()
        stderr.cancel()


async def drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.read(CHUNK):
        pass


def checkpoints(block: bytes) -> Iterator[dict[str, Any]]:
    """The checkpoint messages among a block's complete lines, found without splitting the
    documents into lines."""
    text = b"\n" + block
    at = text.find(NEW_CHECKPOINT)
    while at >= 0:
        end = text.find(b"\n", at + 1)
        yield orjson.loads(text[at + 1 : end])
        at = text.find(NEW_CHECKPOINT, end)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


class ConnectorOutput:
    """Reads a started connector's stdout on a thread until `done(counts, block)` says so or the
    connector exits. `block` is each run of complete lines as read. Checkpoints are acknowledged
    when the connector asked for explicit acknowledgements."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        fd: int,
        *,
        started: float,
        done: Callable[[Counts, bytes], bool],
    ) -> None:
        self.proc, self.fd, self.started, self.done = proc, fd, started, done
        self.counts = Counts()
        self.exited = False
        self._loop = asyncio.get_running_loop()
        self._finished: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, name="connector-stdout", daemon=True)

    @classmethod
    async def start(
        cls, d: ConnectorDriver, open_request: dict[str, Any], *, done: Callable[[Counts, bytes], bool]
    ) -> "ConnectorOutput":
        read_fd, write_fd = os.pipe()
        fcntl.fcntl(write_fd, F_SETPIPE_SZ, PIPE_SIZE)
        try:
            proc = await d.start_process(stdout=write_fd)
        finally:
            os.close(write_fd)
        assert proc.stdin is not None
        output = cls(proc, read_fd, started=time.monotonic(), done=done)
        proc.stdin.write(orjson.dumps(open_request) + b"\n")
        await proc.stdin.drain()
        output._thread.start()
        return output

    async def finished(self) -> Counts:
        """The counts once `done` said so; raises if the connector exited first."""
        await self._finished
        if self.exited:
            raise RuntimeError(f"the connector exited after {self.counts.documents:,} documents")
        return self.counts

    def close(self) -> None:
        self._thread.join(timeout=5)
        os.close(self.fd)

    def _run(self) -> None:
        counts, rest, acks = self.counts, b"", False
        try:
            while True:
                chunk = os.read(self.fd, CHUNK)
                if not chunk:
                    self.exited = True
                    return
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                block, rest = data[:cut], data[cut:]
                if block.startswith(b'{"opened"'):
                    opened = orjson.loads(block.split(b"\n", 1)[0])["opened"]
                    acks = bool(opened.get("explicitAcknowledgements"))
                if acks and (checkpoints := block.count(CHECKPOINT)):
                    self._loop.call_soon_threadsafe(self._acknowledge, checkpoints)
                if documents := block.count(CAPTURED):
                    counts.last_s = time.monotonic() - self.started
                    counts.documents += documents
                    if not counts.first_s:
                        counts.first_s, counts.first_batch = counts.last_s, counts.documents
                if self.done(counts, block):
                    return
        finally:
            self._loop.call_soon_threadsafe(self._settle)

    def _acknowledge(self, checkpoints: int) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(ACK * checkpoints)

    def _settle(self) -> None:
        if not self._finished.done():
            self._finished.set_result(None)
