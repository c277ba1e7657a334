import pytest

from benchmarks.schedule import job_seconds, shortest_makespan


@pytest.mark.parametrize(
    ("chains", "slots", "interval", "expected"),
    [
        ([[3.0], [2.0]], 1, 1.0, 5.0),  # one slot: one job after the other
        ([[1.0, 1.0]], 2, 0.0, 2.0),  # a type's next window waits for its last one
        ([[5.0], [5.0], [5.0]], 3, 1.0, 7.0),  # starts one interval apart
        # Taking jobs in the order given (2, 2, 2, 3, 3) would end at 7; the best pairs 3 with 3.
        ([[2.0], [2.0], [2.0], [3.0], [3.0]], 2, 0.0, 6.0),
        ([[2.0, 4.0], [4.0]], 2, 0.0, 6.0),
    ],
)
def test_shortest_makespan(chains: list[list[float]], slots: int, interval: float, expected: float) -> None:
    assert shortest_makespan(chains, slots, interval) == pytest.approx(expected)


def test_job_seconds_follow_the_benchmark_simulators_model() -> None:
    assert job_seconds(25_000) == pytest.approx(14.5)
