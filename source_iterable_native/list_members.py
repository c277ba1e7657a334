"""List membership: `GET /api/lists/getUsers`, one list per backfill step.

Iterable answers with the whole list as plain text, one identifier per line, in an order that
changes between calls; a large list can take over an hour, and some lists fail for hours. The
response is spooled (to disk past a few megabytes) and emitted only once complete, so a transfer
that breaks and is retried never emits a member twice, and memory stays flat.
"""

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from logging import Logger
from typing import IO, AsyncGenerator, Awaitable, TypeVar

import aiohttp
from estuary_cdk.capture.common import LogCursor, PageCursor
from estuary_cdk.http import Headers, HTTPError, HTTPSession

from .api import api_url, snapshot
from .models import List, ListMember

ATTEMPTS = 3
"""Tries per list, for server errors and for transfers that break, before the list is skipped."""
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024

T = TypeVar("T")


class ListUnavailable(Exception):
    """The list kept failing; it is skipped until the next scheduled run."""


@dataclass
class ListMembers:
    """The list_users backfill: the members of one list per step, in list id order."""

    members_http: HTTPSession
    lists_http: HTTPSession
    """The session lists are listed through: the list membership budget is not spent on them."""
    origin: str
    timeout: timedelta
    """How long one list's response may take."""
    stopping: asyncio.Event
    """Set when the connector is asked to stop: a list being read is left to the next session."""

    async def fetch_page(
        self, log: Logger, page: PageCursor, cutoff: LogCursor
    ) -> AsyncGenerator[ListMember | PageCursor, None]:
        """The members of the first list (in id order) after the page, the id of the last list done."""
        assert isinstance(cutoff, datetime)
        done = page if isinstance(page, int) else 0
        lists = snapshot(List, List.listing(self.lists_http, self.origin), log)
        remaining = sorted([item.id async for item in lists if item.id > done])
        if not remaining:
            return
        list_id = remaining[0]
        download = _download_members(
            self.members_http, self.origin, log, list_id=list_id, timeout=self.timeout
        )
        try:
            spool = await _unless_stopping(download, self.stopping)
        except ListUnavailable as err:
            log.warning(
                f"skipping list {list_id} until the next scheduled run: {err}",
                {"list_id": list_id, "lists_left": len(remaining) - 1},
            )
            yield list_id
            return
        if spool is None:
            yield done  # stopping: this list is read again by the next session
            return
        with spool:
            members = 0
            for raw in spool:
                user_id = raw.decode("utf-8").strip()
                if user_id:
                    members += 1
                    yield ListMember(list_id=list_id, user_id=user_id, run_started_at=cutoff)
        log.info(
            "read list members", {"list_id": list_id, "members": members, "lists_left": len(remaining) - 1}
        )
        yield list_id


async def _unless_stopping(work: Awaitable[T], stopping: asyncio.Event) -> T | None:
    """The result of `work`, or None if the connector is asked to stop first."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return None


async def _download_members(
    http: HTTPSession, origin: str, log: Logger, *, list_id: int, timeout: timedelta
) -> IO[bytes]:
    """The list's whole response body, spooled; raises ListUnavailable once the tries are spent."""
    url = api_url(origin, ListMember.path)
    client_timeout = aiohttp.ClientTimeout(total=timeout.total_seconds())
    failure = ""
    for attempt in range(1, ATTEMPTS + 1):
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)
        try:
            _, body = await http.request_stream(
                log, url, params={"listId": list_id}, timeout=client_timeout, should_retry=_retry_server_error
            )
            async for chunk in body():
                spool.write(chunk)
            spool.seek(0)
            return spool
        except HTTPError as err:
            spool.close()
            if err.code in (401, 403):
                raise  # the key may not read list membership: the binding fails with advice
            if err.code < 500:
                raise ListUnavailable(f"Iterable answered HTTP {err.code}: {err.message}") from err
            raise ListUnavailable(f"Iterable answered HTTP {err.code} {ATTEMPTS} times") from err
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            spool.close()
            failure = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            log.warning(
                "list members transfer broke (will retry)",
                {"list_id": list_id, "attempt": attempt, "error": failure},
            )
    raise ListUnavailable(f"the transfer broke {ATTEMPTS} times, last with {failure}")


def _retry_server_error(status: int, headers: Headers, body: bytes, attempt: int) -> bool:
    return attempt < ATTEMPTS
