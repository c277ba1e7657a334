"""Event types generated lazily and deterministically from each record's index.

A stream holds no record: record `i` is built from (seed, i) when read, so neither memory nor
start-up grows with its size. Its records lie at a constant rate over [start, end), in index order
by their whole second, and each is visible from its `createdAt` on. An export of a stream selects
indices and renders each line when its file is downloaded. Streams are read-only: `add_event` does
not apply to them.
"""

from __future__ import annotations

import hashlib
import math
import struct
from abc import abstractmethod
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, overload

import orjson

from . import timefmt
from .stored import Stored


class EventStream(Sequence[Stored]):
    """One event type at a constant rate from `start`: record `i` lies in the whole second
    floor(start + i / per_second)."""

    def __init__(self, seed: int, data_type: str, start: float, per_second: float, size: int) -> None:
        self.seed, self.data_type, self.start, self.per_second = seed, data_type, start, per_second
        self.size = size
        self._rendered: bytearray | None = None
        self._offsets = array("q")

    def prerender(self) -> None:
        """Render every line now, into one buffer, so that serving a line is a copy: an export
        file then costs the simulator as little as a finished file costs S3 to serve, and a
        benchmark measures the connector rather than the simulator's rendering. Holds every
        line's bytes in memory."""
        rendered, offsets = bytearray(), array("q", [0])
        for i in range(self.size):
            rendered += self.render(i)
            offsets.append(len(rendered))
        self._rendered, self._offsets = rendered, offsets

    @abstractmethod
    def record(self, i: int) -> dict[str, Any]: ...

    def exact(self, i: int) -> float:
        """The instant record `i`'s `createdAt` denotes: its second, unless the string carries a fraction."""
        return self.cursor(i)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> Stored: ...
    @overload
    def __getitem__(self, index: slice) -> list[Stored]: ...
    def __getitem__(self, index: int | slice) -> Stored | list[Stored]:
        if isinstance(index, slice):
            return [self.stored(i) for i in range(*index.indices(self.size))]
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self.stored(index)

    def __iter__(self) -> Iterator[Stored]:
        return (self.stored(i) for i in range(self.size))

    def stored(self, i: int) -> Stored:
        exact = self.exact(i)
        return Stored(self.record(i), exact, exact)

    def line(self, i: int) -> bytes:
        if self._rendered is not None:
            return bytes(self._rendered[self._offsets[i] : self._offsets[i + 1]])
        return self.render(i)

    def line_size(self, i: int) -> int:
        if self._rendered is not None:
            return self._offsets[i + 1] - self._offsets[i]
        return self.render_size(i)

    def render(self, i: int) -> bytes:
        """Record `i`'s JSON line."""
        return orjson.dumps(self.record(i))

    def render_size(self, i: int) -> int:
        return len(self.render(i))

    def cursor(self, i: int) -> float:
        """Record `i`'s whole second."""
        return float(math.floor(self.start + i / self.per_second))

    def index_at(self, t: float) -> int:
        """The first record whose second is at or after `t`."""
        i = max(0, min(self.size, math.ceil((math.ceil(t) - self.start) * self.per_second) - 1))
        while i < self.size and self.cursor(i) < t:
            i += 1
        while i > 0 and self.cursor(i - 1) >= t:
            i -= 1
        return i

    def between(self, start: float, end: float) -> int:
        """How many records have their second in [start, end)."""
        return max(0, self.index_at(end) - self.index_at(start))

    def window(self, start: float | None, end: float | None, at: float) -> list[int]:
        """The indices, in order, of the records whose `createdAt` lies in [start, end) and that
        are visible at `at`. Only the records of the first and last seconds are looked at."""
        last = at if end is None else min(end, at)

        def selected(i: int) -> bool:
            e = self.exact(i)
            return (start is None or start <= e) and (end is None or e < end) and e <= at

        lo = 0 if start is None else self.index_at(math.floor(start))
        hi = self.index_at(math.floor(last) + 1)
        # Records of the seconds strictly between start's and the last one's are all selected.
        whole_lo = 0 if start is None else self.index_at(math.floor(start) + 1)
        whole_hi = self.index_at(math.floor(last))
        if whole_lo >= whole_hi:
            return [i for i in range(lo, hi) if selected(i)]
        return [
            *(i for i in range(lo, whole_lo) if selected(i)),
            *range(whole_lo, whole_hi),
            *(i for i in range(whole_hi, hi) if selected(i)),
        ]


_DEVICES = ("Gmail", "iPhone", "Other")
_CITIES = ("Berlin", "Austin", "Lyon")
_REGIONS = ("BE", "TX", "ARA")
_COUNTRIES = ("DE", "US", "FR")
_USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)"
# A record's digest: messageId, createdAt format roll and microseconds, user, identity variant,
# campaign, the ip's three octets, then the device, city, region and country choices.
_DIGEST = struct.Struct("<16sIIHBH3B4H")
# The characters of a line that are the same in every one: its keys and punctuation, userAgent,
# messageId's 32 hex digits, and the "10." and two dots of ip.
_LINE_FIXED = (
    len(
        '"createdAt":"","messageId":"",,"ip":"","userAgent":"","userAgentDevice":"","city":"","region":"","country":""}'
    )
    + len(_USER_AGENT)
    + 32
    + 5
)
_DIGITS = [len(str(n)) for n in range(256)]
_LENGTHS = {s: len(s) for s in (*_DEVICES, *_CITIES, *_REGIONS, *_COUNTRIES)}
_FRACTION_ROLL = int(0.003 * 2**32)  # createdAt with a double fraction carrying microseconds
_OFFSET_ROLL = int(0.06 * 2**32)  # createdAt with a +0000 offset (the rest of this range)


class EmailOpens(EventStream):
    """`count` emailOpen events spread evenly over [start, end), shaped as the data Generator's:
    the recipient's identity copied from one of `users` as the project type has it, the message
    one of a launched email campaign's (`campaigns`: (campaignId, templateId) pairs), and
    `createdAt` in Iterable's usual format, or now and then with a `+0000` offset (5.7%) or a
    double fraction carrying microseconds (0.3%). Every open has its own messageId, as in a
    project whose sends are not generated. Each record's choices come from a BLAKE2b digest of
    (seed, index); its line is formatted by hand, byte for byte as orjson writes its record."""

    def __init__(
        self,
        seed: int,
        *,
        start: float,
        end: float,
        count: int,
        users: list[dict[str, Any]],
        campaigns: list[tuple[int, int]],
        project_type: str,
    ) -> None:
        super().__init__(seed, "emailOpen", start=start, per_second=count / max(1.0, end - start), size=count)
        self.users = [_identity(u, project_type) for u in users] or [({}, {})]
        self.campaigns = campaigns or [(0, 0)]
        self._key = b"emailOpen:" + str(seed).encode()
        self._users_json = [(_object_head(full), _object_head(partial)) for full, partial in self.users]
        self._campaigns_json = [f'"campaignId":{c},"templateId":{t}' for c, t in self.campaigns]
        self._users_json_len = [(len(full), len(partial)) for full, partial in self._users_json]

    def _digest(self, i: int) -> tuple[Any, ...]:
        digest = hashlib.blake2b(i.to_bytes(8, "little"), digest_size=_DIGEST.size, key=self._key)
        return _DIGEST.unpack(digest.digest())

    def exact(self, i: int) -> float:
        _, roll, micros, *_ = self._digest(i)
        second = self.cursor(i)
        return second + micros % 1_000_000 / 1_000_000 if roll < _FRACTION_ROLL else second

    def _created_at(self, i: int, roll: int, micros: int) -> str:
        second_str = timefmt.seconds_str(int(self.cursor(i)))
        if roll < _FRACTION_ROLL:
            return second_str.replace(" ", "T") + f".{micros % 1_000_000:06d}.000Z"
        return second_str + (" +0000" if roll < _OFFSET_ROLL else " +00:00")

    def record(self, i: int) -> dict[str, Any]:
        message_id, roll, micros, user, partial, campaign, a, b, c, device, city, region, country = (
            self._digest(i)
        )
        campaign_id, template_id = self.campaigns[campaign % len(self.campaigns)]
        return {
            **self.users[user % len(self.users)][partial & 1],
            "createdAt": self._created_at(i, roll, micros),
            "messageId": message_id.hex(),
            "campaignId": campaign_id,
            "templateId": template_id,
            "ip": f"10.{a}.{b}.{c % 254 + 1}",
            "userAgent": _USER_AGENT,
            "userAgentDevice": _DEVICES[device % 3],
            "city": _CITIES[city % 3],
            "region": _REGIONS[region % 3],
            "country": _COUNTRIES[country % 3],
        }

    def render(self, i: int) -> bytes:
        message_id, roll, micros, user, partial, campaign, a, b, c, device, city, region, country = (
            self._digest(i)
        )
        return (
            f"{self._users_json[user % len(self.users)][partial & 1]}"
            f'"createdAt":"{self._created_at(i, roll, micros)}","messageId":"{message_id.hex()}",'
            f'{self._campaigns_json[campaign % len(self.campaigns)]},"ip":"10.{a}.{b}.{c % 254 + 1}",'
            f'"userAgent":"{_USER_AGENT}","userAgentDevice":"{_DEVICES[device % 3]}",'
            f'"city":"{_CITIES[city % 3]}","region":"{_REGIONS[region % 3]}","country":"{_COUNTRIES[country % 3]}"}}'
        ).encode()

    def render_size(self, i: int) -> int:
        """len(self.render(i)), from the lengths of its parts."""
        _, roll, _, user, partial, campaign, a, b, c, device, city, region, country = self._digest(i)
        created_at = 31 if roll < _FRACTION_ROLL else 25 if roll < _OFFSET_ROLL else 26
        return (
            _LINE_FIXED
            + self._users_json_len[user % len(self.users)][partial & 1]
            + created_at
            + len(self._campaigns_json[campaign % len(self.campaigns)])
            + _DIGITS[a]
            + _DIGITS[b]
            + _DIGITS[c % 254 + 1]
            + _LENGTHS[_DEVICES[device % 3]]
            + _LENGTHS[_CITIES[city % 3]]
            + _LENGTHS[_REGIONS[region % 3]]
            + _LENGTHS[_COUNTRIES[country % 3]]
        )


def _identity(user: dict[str, Any], project_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The identity fields an event of `user` carries: (with its email, without it). Events of
    UserID-based projects carry the email half the time."""
    full = {k: user[k] for k in ("email", "userId", "itblUserId") if k in user}
    if project_type != "UserID-based":
        return full, full
    return full, {k: v for k, v in full.items() if k != "email"}


def _object_head(fields: dict[str, Any]) -> str:
    """A JSON object of `fields` without its closing brace, ready for more fields."""
    return orjson.dumps(fields).decode()[:-1] + ("," if fields else "")
