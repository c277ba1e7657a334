import asyncio

from benchmarks import records


def test_whole_path_benchmark_captures_each_line_once() -> None:
    lines = records.email_opens(1_600)
    assert len(set(lines)) == 1_600
    assert asyncio.run(records.document_path(lines)) == 1_600
