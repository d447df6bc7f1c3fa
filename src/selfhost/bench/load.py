"""Load generation: closed-loop concurrency, or open-loop arrivals on an absolute schedule.

Open loop: arrival i is due at t0 + Σ gaps, with gaps drawn up front (Poisson: exponential; gamma: shape
= burstiness, mean 1/rate; constant). The dispatcher sleeps until each due time (never a relative sleep,
so lateness does not accumulate, cf. vllm#21104) and the request's latencies count from that due time,
including any wait for a `max_concurrency` slot (queue_s) — so an overloaded server cannot hide behind a
slow client (coordinated omission).
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from selfhost.bench.client import RequestRecord

__all__ = ["LoadSpec", "LoadStats", "arrival_gaps", "run_load"]


@dataclass(frozen=True)
class LoadSpec:
    concurrency: int | None = 1  # closed loop when set
    rate: float | None = None  # open loop (requests/s) when set
    arrival: str = "poisson"  # poisson | gamma | constant
    burstiness: float = 1.0  # gamma shape; 1.0 is Poisson
    max_concurrency: int | None = None  # open loop: cap on requests in flight (waiting counts as queue_s)
    requests: int | None = 100
    duration_s: float | None = None
    warmup: int = 0
    seed: int = 0
    schedule: tuple[float, ...] | None = None  # open loop at these offsets (s) from the start: a replayed trace
    first_id: int = 0  # request ids start here (each --workers process gets its own range)


@dataclass
class LoadStats:
    started: float = 0.0
    finished: float = 0.0
    loop_lag_s: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    max_in_flight: int = 0

    @property
    def wall_s(self) -> float:
        return self.finished - self.started

    @property
    def client_cpu_fraction(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def arrival_gaps(spec: LoadSpec, n: int) -> list[float]:
    """n inter-arrival gaps. For a run of a fixed count they are rescaled so their mean is exactly 1/rate:
    over 2,000 draws the sample mean of an exponential strays ±2.2 % (1 s.d.), which would otherwise be
    reported as the client missing its target."""
    assert spec.rate and spec.rate > 0
    rng = random.Random(spec.seed)
    if spec.arrival == "constant":
        return [1.0 / spec.rate] * n
    if spec.arrival == "gamma":
        shape = spec.burstiness
        gaps = [rng.gammavariate(shape, 1.0 / (spec.rate * shape)) for _ in range(n)]
    else:
        gaps = [rng.expovariate(spec.rate) for _ in range(n)]
    if spec.requests and not spec.duration_s and n > 1:
        scale = n / (spec.rate * sum(gaps))
        gaps = [g * scale for g in gaps]
    return gaps


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _sleep_until(due: float) -> None:
    """Event-loop timers fire on a millisecond grid, which would bend short exponential gaps: sleep to
    1 ms before the due time, then yield until it arrives."""
    delay = due - time.perf_counter()
    if delay > 0.002:
        await asyncio.sleep(delay - 0.001)
    while time.perf_counter() < due:
        await asyncio.sleep(0)


async def _lag_monitor(stats: LoadStats, stop: asyncio.Event, period: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + period
        await asyncio.sleep(period)
        stats.loop_lag_s.append(max(0.0, loop.time() - due))


async def run_load(
    spec: LoadSpec,
    execute: Callable[[RequestRecord], Awaitable[RequestRecord]],
    on_record: Callable[[RequestRecord], None],
) -> LoadStats:
    """Drive `execute` under `spec`; every finished record (warmup ones marked) goes to `on_record`."""
    stats = LoadStats()
    stop = asyncio.Event()
    monitor = asyncio.create_task(_lag_monitor(stats, stop))
    in_flight = 0
    total = (spec.requests or 0) + spec.warmup if spec.requests else None
    cpu0 = _cpu()
    perf = time.perf_counter
    stats.started = perf()
    deadline = stats.started + spec.duration_s if spec.duration_s else None

    async def one(i: int, scheduled: float, sem: asyncio.Semaphore | None) -> None:
        nonlocal in_flight
        rec = RequestRecord(id=spec.first_id + i, scheduled_t=scheduled, warmup=i < spec.warmup)
        if sem is not None:
            await sem.acquire()
        in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, in_flight)
        try:
            on_record(await execute(rec))
        finally:
            in_flight -= 1
            if sem is not None:
                sem.release()

    try:
        if spec.schedule is not None or spec.rate:
            if spec.schedule is not None:
                n = len(spec.schedule) if total is None else min(total, len(spec.schedule))
                gaps = [b - a for a, b in zip((0.0, *spec.schedule), spec.schedule)]
            else:
                n = total if total is not None else int((spec.rate or 0) * (spec.duration_s or 0) * 1.5) + 10
                gaps = arrival_gaps(spec, n)
            sem = asyncio.Semaphore(spec.max_concurrency) if spec.max_concurrency else None
            tasks: list[asyncio.Task[None]] = []
            due = stats.started
            for i in range(n):
                due += gaps[i]
                if deadline is not None and due > deadline:
                    break
                await _sleep_until(due)
                tasks.append(asyncio.create_task(one(i, due, sem)))
            await asyncio.gather(*tasks)
        else:
            counter = iter(range(total if total is not None else 1 << 62))

            async def worker() -> None:
                for i in counter:
                    if deadline is not None and perf() >= deadline:
                        return
                    await one(i, perf(), None)

            await asyncio.gather(*(worker() for _ in range(spec.concurrency or 1)))
    finally:
        stats.finished = perf()
        stats.cpu_s = _cpu() - cpu0
        stop.set()
        await monitor
    return stats
