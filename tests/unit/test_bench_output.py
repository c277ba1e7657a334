from typing import Any

import orjson

from benchmarks.output import checkpoints


def _lines(*messages: Any) -> bytes:
    return b"".join(orjson.dumps(m) + b"\n" for m in messages)


def test_checkpoints_are_found_among_documents_and_at_the_block_start() -> None:
    first = {"checkpoint": {"state": {"updated": {"a": 1}}}}
    last = {"checkpoint": {"state": {"updated": {"b": 2}}}}
    doc = {"captured": {"binding": 0, "doc": {"note": 'a "checkpoint": inside a document'}}}
    block = _lines(first, doc, doc, last, doc)
    assert list(checkpoints(block)) == [first, last]


def test_a_block_of_documents_has_no_checkpoints() -> None:
    doc = {"captured": {"binding": 0, "doc": {"checkpoint": {}}}}
    assert list(checkpoints(_lines(doc, doc))) == []
