"""What the late-data pass must not emit again: the records other passes emitted in its range.

Each read that the late-data pass will re-read (a real-time window, the tail of the backfill)
leaves one segment: its span and the sorted 64-bit digests of the exact lines it emitted, 8 bytes
a record. A record is skipped only if its line, so its key, cursor and content, was emitted before:
a second version of a user with the same `profileUpdatedAt` second differs in content and is
emitted. A segment is released once the late-data pass has passed its end.
"""

import bisect
from array import array
from dataclasses import dataclass, field
from datetime import datetime

import xxhash

line_digest = xxhash.xxh3_64_intdigest
"""The digest of one exported line (the record's key, cursor and content)."""


@dataclass
class Segment:
    start: datetime
    end: datetime
    digests: array
    """Sorted digests of the lines emitted in [start, end)."""

    def __contains__(self, digest: int) -> bool:
        i = bisect.bisect_left(self.digests, digest)
        return i < len(self.digests) and self.digests[i] == digest


@dataclass
class EmittedLines:
    """The emitted lines of one data type that the late-data pass has not passed yet."""

    segments: list[Segment] = field(default_factory=list)
    """Disjoint, ordered by start."""

    def add(self, start: datetime, end: datetime, digests: array) -> None:
        """Remember the lines a read of [start, end) emitted (digests in any order)."""
        if not digests:
            return
        ordered = array("Q", sorted(digests))
        bisect.insort(self.segments, Segment(start, end, ordered), key=lambda s: s.start)

    def emitted(self, cursor: datetime, digest: int) -> bool:
        """Whether the line of a record with this cursor was emitted before."""
        i = bisect.bisect_right(self.segments, cursor, key=lambda s: s.start) - 1
        return i >= 0 and cursor < self.segments[i].end and digest in self.segments[i]

    def release(self, before: datetime) -> None:
        """Forget the segments that end at or before `before`: no pass reads there again."""
        keep = next((i for i, s in enumerate(self.segments) if s.end > before), len(self.segments))
        del self.segments[:keep]

    def __len__(self) -> int:
        return sum(len(s.digests) for s in self.segments)
