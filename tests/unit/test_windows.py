from datetime import timedelta
from unittest.mock import MagicMock

import pytest

from source_iterable_native.export.capture import WINDOW_FLOOR, ExportCapture, TypeProgress, datetime_to_page
from source_iterable_native.export.jobs import ExportFailed, ExportWindow

from .fakes import T0, export_capture, page_to_datetime


def capture() -> ExportCapture:
    return export_capture(MagicMock(), "emailSend", T0)


def window(hours: float) -> ExportWindow:
    return ExportWindow("emailSend", T0, T0 + timedelta(hours=hours))


@pytest.mark.parametrize(
    "records, next_hours",
    [
        (0, 96),  # empty: grows 8x
        (1, 96),  # thin: capped at 8x
        (250_000, 12),  # on target: unchanged
        (500_000, 6),  # twice the target: halves
        (5_000_000, 6),  # far above: never below half
        (100_000, 30),  # proportional in between
    ],
)
def test_next_window_follows_the_records_of_the_last(records: int, next_hours: float) -> None:
    c = capture()
    progress = TypeProgress(timedelta(hours=12), T0)
    c._adapt(window(12), progress, records)
    assert progress.window == timedelta(hours=next_hours)


def test_a_window_clipped_by_the_range_end_does_not_resize() -> None:
    progress = TypeProgress(timedelta(hours=12), T0)
    capture()._adapt(window(3), progress, 0)
    assert progress.window == timedelta(hours=12)


def test_truncation_halves_down_to_the_floor_then_fails() -> None:
    c = capture()
    progress = TypeProgress(timedelta(hours=12), T0)
    c._shrink(window(12), progress)
    assert progress.window == timedelta(hours=6)
    tiny = ExportWindow("emailSend", T0, T0 + WINDOW_FLOOR)
    with pytest.raises(ExportFailed, match=r"truncated the export of emailSend \[2026-01-01T00:00:00.000Z"):
        c._shrink(tiny, progress)


def test_page_cursor_round_trips_whole_seconds() -> None:
    assert page_to_datetime(datetime_to_page(T0)) == T0
    assert page_to_datetime(None) is None


def test_window_renders_inclusive_exclusive_bounds() -> None:
    assert str(window(1)) == "emailSend [2026-01-01T00:00:00.000Z, 2026-01-01T01:00:00.000Z)"
