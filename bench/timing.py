"""Timing shared by the benchmarks (imported as `timing`: a bench runs as a script, with bench/ on sys.path)."""

import time


def best_of(rounds: int, action) -> float:
    """The shortest of `rounds` timings of action() in seconds (the least disturbed by other processes)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)
