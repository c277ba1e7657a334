"""The cursors the listing streams checkpoint, and the packed key and fingerprint forms they share.

Every cursor is a one-string tuple with a version prefix (`c2|`, `r2|`, `i2|`); `decode` also reads
the earlier form each replaced, so a state written by an earlier version still resumes.
"""

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

import orjson

_KEY_ESCAPED = re.compile(r'[%,|"\\\x00-\x1f\x7f]')
_KEY_ESCAPE = re.compile(r"%([0-9A-F]{2})")


def _pack_keys(keys: Iterable[str]) -> str:
    """Keys joined by commas; the characters a cursor uses as separators, or JSON would escape, are
    percent-encoded, so the packed string costs no more in the state than its length."""
    return ",".join(_KEY_ESCAPED.sub(lambda m: f"%{ord(m[0]):02X}", key) for key in keys)


def _unpack_keys(text: str) -> list[str]:
    return [_KEY_ESCAPE.sub(lambda m: chr(int(m[1], 16)), key) for key in text.split(",")] if text else []


class Fingerprints(dict[str, int]):
    """64-bit content fingerprints by key, packed for a cursor as the keys joined by commas, then
    `:` and the digests in base64 (about 11 bytes per key beyond the key itself)."""

    def pack(self) -> str:
        digests = b"".join(digest.to_bytes(8, "big") for digest in self.values())
        return f"{_pack_keys(self)}:{base64.b64encode(digests).decode()}"

    @classmethod
    def unpack(cls, text: str) -> "Fingerprints":
        keys, _, encoded = text.rpartition(":")
        digests = base64.b64decode(encoded)
        names = _unpack_keys(keys)
        assert len(digests) == 8 * len(names), "corrupt fingerprints in the cursor"
        return cls((name, int.from_bytes(digests[8 * i : 8 * i + 8], "big")) for i, name in enumerate(names))


@dataclass
class CampaignsCursor:
    """The campaigns stream's position.

    `floor`: the next pass re-reads every campaign updated after it (an overlap behind the newest
    `updatedAt`, so same-millisecond, late and page-shifted updates are read again); `recent`
    fingerprints what was read above it, so re-reads are not emitted twice; `watching` fingerprints
    the campaigns in a transitional state, which Iterable changes without moving `updatedAt`.
    """

    updated_at: int = 0
    """The newest `updatedAt` seen; 0 before the first pass."""
    floor: int = 0
    recent: Fingerprints = field(default_factory=Fingerprints)
    watching: Fingerprints = field(default_factory=Fingerprints)
    missed: frozenset[str] = frozenset()
    """Watched campaigns the last pass did not see; a second miss stops watching them."""

    def encode(self) -> tuple[str]:
        packed = f"{self.recent.pack()}|{self.watching.pack()}|{_pack_keys(sorted(self.missed))}"
        return (f"c2|{self.updated_at}|{self.floor}|{packed}",)

    @classmethod
    def decode(cls, cursor: Any) -> Self:
        assert isinstance(cursor, tuple) and len(cursor) == 1, f"not a campaigns cursor: {cursor!r}"
        text = str(cursor[0])
        if text.startswith("{"):  # the earlier form: JSON with hex fingerprints of every unended campaign
            old = orjson.loads(text)
            updated_at = int(old.get("updated_at", 0))
            watching = Fingerprints({str(k): int(v, 16) for k, v in old.get("watching", {}).items()})
            return cls(
                updated_at=updated_at, floor=0 if not updated_at else updated_at - 1, watching=watching
            )
        _, newest, lowest, recently, watched, missed_text = text.split("|", 5)
        return cls(
            updated_at=int(newest),
            floor=int(lowest),
            recent=Fingerprints.unpack(recently),
            watching=Fingerprints.unpack(watched),
            missed=frozenset(_unpack_keys(missed_text)),
        )


@dataclass
class RefreshCursor:
    """Fingerprints of every item a refreshed stream tracks, by key; `absent` are the keys the last
    pass did not see: an item is deleted only when two consecutive passes miss it."""

    fingerprints: Fingerprints = field(default_factory=Fingerprints)
    absent: frozenset[str] = frozenset()

    def encode(self) -> tuple[str]:
        return (f"r2|{self.fingerprints.pack()}|{_pack_keys(sorted(self.absent))}",)

    @classmethod
    def decode(cls, cursor: Any) -> Self:
        assert isinstance(cursor, tuple) and len(cursor) == 1, f"not a refresh cursor: {cursor!r}"
        text = str(cursor[0])
        if text.startswith("{"):  # the earlier form: JSON with hex fingerprints
            old = orjson.loads(text).get("fingerprints", {})
            return cls(fingerprints=Fingerprints({k: int(v, 16) for k, v in old.items()}))
        _, fingerprints, absent = text.split("|", 2)
        return cls(fingerprints=Fingerprints.unpack(fingerprints), absent=frozenset(_unpack_keys(absent)))


@dataclass
class CatalogItemsCursor:
    """Where the catalog_items stream resumes after a restart: items modified after `since` (the
    start of the pass before the last complete one) are read as changed, and the item count of
    every catalog it had; item ids are remembered in memory only (millions do not fit a state)."""

    since: datetime
    counts: dict[str, int] | None = None
    """None for a cursor of an earlier version, which did not record its catalogs."""

    def encode(self) -> tuple[str]:
        names, counts = _pack_keys(self.counts or {}), ",".join(map(str, (self.counts or {}).values()))
        return (f"i2|{self.since.isoformat()}|{names}|{counts}",)

    @classmethod
    def decode(cls, cursor: Any) -> Self:
        if isinstance(cursor, datetime):  # the earlier form: the start of the last pass
            return cls(since=cursor)
        assert isinstance(cursor, tuple) and len(cursor) == 1, f"not a catalog items cursor: {cursor!r}"
        _, since, names, counts = str(cursor[0]).split("|", 3)
        numbers = [int(n) for n in counts.split(",")] if counts else []
        return cls(since=datetime.fromisoformat(since), counts=dict(zip(_unpack_keys(names), numbers)))
