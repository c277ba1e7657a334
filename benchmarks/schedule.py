"""The shortest time in which Iterable's processing slots can run a backfill's export jobs.

`python -m benchmarks.schedule` prints it for the dense backfill's windows (scenario 4): per data
type a job of about 8,400 records, then one of about 25,000 that can start only once the first
has ended, on four slots, each job 2 s plus 0.5 s per 1,000 records, starts one second apart.
No connector, however it schedules those jobs, catches up sooner; see docs/export-budget.md.
"""

from .harness import EXPORT_SLOTS, JOB_BASE_S, JOB_PER_1K_RECORDS_S, table

START_INTERVAL_S = 1.0
"""Iterable's export/start budget: one request a second."""


def job_seconds(records: float) -> float:
    """How long the benchmark's simulator processes an export job of `records` records."""
    return JOB_BASE_S + JOB_PER_1K_RECORDS_S * records / 1000


def shortest_makespan(chains: list[list[float]], slots: int, start_interval: float) -> float:
    """The end of the last job in the best schedule of `chains` (each a data type's jobs, in the
    order their windows follow) on `slots` slots, starts at least `start_interval` apart: an
    exhaustive branch-and-bound over which ready job takes the slot that frees first."""
    best = float("inf")

    def search(free: list[float], next_job: list[int], ready_at: list[float], last_start: float) -> None:
        nonlocal best
        remaining = sum(sum(chain[n:]) for chain, n in zip(chains, next_job))
        if remaining == 0:
            best = min(best, max(free))
            return
        slot = min(range(slots), key=free.__getitem__)
        if free[slot] + remaining / slots >= best:
            return
        tried = set()
        for i, chain in enumerate(chains):
            # Types whose remaining jobs and readiness are alike lead to the same schedules.
            alike = (tuple(chain[next_job[i] :]), ready_at[i])
            if next_job[i] == len(chain) or alike in tried:
                continue
            tried.add(alike)
            start = max(free[slot], ready_at[i], last_start + start_interval)
            end = start + chain[next_job[i]]
            saved = free[slot], ready_at[i]
            free[slot], ready_at[i] = end, end
            next_job[i] += 1
            search(free, next_job, ready_at, start)
            next_job[i] -= 1
            free[slot], ready_at[i] = saved

    search([0.0] * slots, [0] * len(chains), [0.0] * len(chains), -start_interval)
    return best


def main() -> None:
    chains = [[job_seconds(8_400), job_seconds(25_000)] for _ in range(6)]
    best = shortest_makespan(chains, EXPORT_SLOTS, START_INTERVAL_S)
    work = sum(map(sum, chains))
    print(
        table(
            "Dense backfill's twelve jobs on Iterable's processing slots (simulated seconds)",
            ["job-seconds", "all slots busy throughout", "shortest schedule"],
            [[work, work / EXPORT_SLOTS, best]],
        )
    )


if __name__ == "__main__":
    main()
