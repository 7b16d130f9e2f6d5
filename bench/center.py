"""The center under a city's load: 3,000 gateways reporting every 30 s plus a storm of 1,000 alarms/s for 10 s.

The center runs as its own process (`python -m gateway center`), the load comes from this one over real HTTP with
the gateway's signatures, and a console stand-in reads `/events`. Measured: alarm POST sent → its SSE `alarm` event
on the console (p50/p95/p99), lost and doubled alarms (by SSE and by what is stored), each instance's CPU. In the
same run: SQLite, PostgreSQL, two instances on one PostgreSQL (the load split between them, each console fed by
the instance it watches), and the floor: the same storm against `simulators/platform.py` (answers from memory,
no disk, no feed): POST → answer.

    .venv/bin/python bench/center.py              # full run (about two minutes)
    .venv/bin/python bench/center.py --quick      # 3 s storm, 300 gateways
    .venv/bin/python bench/center.py --drivers    # the store-driver comparison (sqlite3 vs SQLAlchemy Core)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on the path, where `center` would be this file, not the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from adapters.upstreams.signing import HEADER, sign  # noqa: E402
from simulators.postgres import PostgresServer  # noqa: E402
from tests.center.senders import alarm_event, report_event  # noqa: E402
from tests.fixtures.ports import free_port  # noqa: E402

FIRST_SCHOOL = 51040300000
START_WITHIN_S = 30.0
# After the storm, events still in flight get this long to reach the console before they count as lost.
DRAIN_S = 10.0
TICK_S = 0.01  # alarms go out in 10 ms ticks: 10 per tick at 1,000/s


def school_id(index: int) -> str:
    return str(FIRST_SCHOOL + index)


def secret(index: int) -> str:
    return f"bench-secret-{index}"


def percentiles(samples: list[float]) -> str:
    if not samples:
        return "p50 — p95 — p99 —"
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {statistics.median(ordered):6.1f} ms  p95 {at(0.95):6.1f} ms  p99 {at(0.99):6.1f} ms"


def write_config(path: Path, storage_url: str, port: int, schools: int) -> None:
    lines = [f'center: {{listen: "127.0.0.1:{port}"}}', f'storage: {{url: "{storage_url}"}}', "schools:"]
    for index in range(schools):
        district = f"区{index % 5}"
        entry = f'id: "{school_id(index)}", name: 学校{index}, district: {district}, secret: "{secret(index)}"'
        lines.append(f"  - {{{entry}}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def center_process(workdir: Path, storage_url: str, schools: int, name: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    config = workdir / f"{name}.yaml"
    write_config(config, storage_url, port, schools)
    log = (workdir / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--log-level", "WARNING", "center", "-c", str(config)],
        cwd=REPO,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_WITHIN_S
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"center {name} did not start; see {log.name}") from None
                time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class Run:
    sent_at: dict[str, float] = field(default_factory=dict)  # event id -> monotonic send time
    seen: dict[str, list[float]] = field(default_factory=dict)  # event id -> SSE arrival times
    answered_ms: list[float] = field(default_factory=list)
    failed: int = 0
    reports: int = 0
    started: float = 0.0


async def console(base: str, run: Run, ready: asyncio.Event) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(base + "/events") as feed:
        ready.set()
        kind = None
        async for raw in feed.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "alarm":
                event_id = json.loads(line[6:])["id"]
                run.seen.setdefault(event_id, []).append(time.monotonic())


def signed_headers(index: int, body: bytes) -> dict[str, str]:
    return {HEADER: sign(secret(index), body, int(time.time())), "Content-Type": "application/cloudevents+json"}


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], run: Run, event_id: str | None
) -> None:
    started = time.monotonic()
    if event_id is not None:
        run.sent_at[event_id] = started
    try:
        async with http.post(url, data=body, headers=headers) as answer:
            await answer.read()
            if answer.status != 200:
                run.failed += 1
    except aiohttp.ClientError:
        run.failed += 1
        return
    if event_id is not None:
        run.answered_ms.append((time.monotonic() - started) * 1000)


async def load(bases: list[str], schools: int, rate: int, seconds: float, report_every_s: float, run: Run) -> None:
    """The storm of alarms plus every school's reports, spread over the instances in turn."""
    connector = aiohttp.TCPConnector(limit=400)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks: set[asyncio.Task[None]] = set()
        # Bodies and signatures made before the storm (well inside the ±300 s window), so that the load
        # generator spends its share of the two cores on sending, not on JSON and HMAC.
        alarms = []
        for number in range(int(rate * seconds) + rate):
            index = number % schools
            body = alarm_event(school_id(index), f"storm-{number}")
            alarms.append((body, signed_headers(index, body), json.loads(body)["id"]))
        reports = []
        for number in range(int(schools / report_every_s * seconds) + 10):
            index = number % schools
            body = report_event(school_id(index), 0.9, total=10, every=report_every_s)
            reports.append((body, signed_headers(index, body)))
        reports_per_tick = schools / report_every_s * TICK_S
        report_credit = 0.0
        per_tick = rate * TICK_S
        alarm_credit = 0.0
        start = time.monotonic()
        run.started = start
        sent = 0
        report_index = 0
        tick = 0
        while time.monotonic() - start < seconds:
            tick += 1
            alarm_credit += per_tick
            report_credit += reports_per_tick
            while alarm_credit >= 1:
                alarm_credit -= 1
                body, headers, event_id = alarms[sent % len(alarms)]
                base = bases[sent % len(bases)]
                tasks.add(asyncio.create_task(post(http, base + "/alarms", body, headers, run, event_id)))
                sent += 1
            while report_credit >= 1:
                report_credit -= 1
                body, headers = reports[report_index % len(reports)]
                base = bases[report_index % len(bases)]
                tasks.add(asyncio.create_task(post(http, base + "/reports", body, headers, run, None)))
                report_index += 1
                run.reports += 1
            done = {t for t in tasks if t.done()}
            tasks -= done
            await asyncio.sleep(max(0.0, start + tick * TICK_S - time.monotonic()))
        await asyncio.gather(*tasks)


async def stored_alarms(base: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(base + "/api/alarms?limit=1000") as answer:
        rows = await answer.json()
    return len(rows)


async def scenario(label: str, bases: list[str], pids: list[int], args: argparse.Namespace) -> None:
    run = Run()
    # One console, on the first instance: with several instances on one PostgreSQL it sees every alarm, those the
    # other instance took arriving through LISTEN/NOTIFY.
    ready = [asyncio.Event()]
    consoles = [asyncio.create_task(console(bases[0], run, ready[0]))]
    await asyncio.gather(*(r.wait() for r in ready))
    cpu_before = [cpu_seconds(p) for p in pids]
    await load(bases, args.schools, args.rate, args.seconds, args.report_every, run)
    deadline = time.monotonic() + DRAIN_S
    # Polling: the events arrive on the console tasks' sockets, counted in `run`.
    while time.monotonic() < deadline and len(run.seen) < len(run.sent_at):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu_before, strict=True)]
    for task in consoles:
        task.cancel()
    await asyncio.gather(*consoles, return_exceptions=True)
    latencies = [(run.seen[i][0] - at) * 1000 for i, at in run.sent_at.items() if i in run.seen]
    lost = sum(1 for i in run.sent_at if i not in run.seen)
    doubled = sum(1 for times in run.seen.values() if len(times) > 1)
    print(
        f"{label:<34} alarm → console {percentiles(latencies)}  sent {len(run.sent_at)} lost {lost} doubled {doubled}"
        f" failed {run.failed} reports {run.reports}"
    )
    print(
        f"{'':<34} POST → answer   {percentiles(run.answered_ms)}  CPU s per instance: "
        + ", ".join(f"{c:.1f}" for c in cpu)
    )


async def floor(args: argparse.Namespace) -> None:
    """The same storm against the seed receiver: POST → answer from memory, no disk, no feed."""
    from aiohttp import web

    from simulators.platform import PlatformReceiver

    receiver = PlatformReceiver()
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    run = Run()
    try:
        # Same process as the load (the receiver shares its loop): an upper bound on the HTTP floor.
        await load([f"http://127.0.0.1:{port}"], args.schools, args.rate, args.seconds, args.report_every * 1e9, run)
    finally:
        await runner.cleanup()
    print(f"{'floor: simulators/platform.py':<34} POST → answer   {percentiles(run.answered_ms)}  failed {run.failed}")


def drivers() -> None:
    import sqlite3

    count = 3000
    body = json.dumps({"x": "y" * 400})
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(2):
            path = Path(tmp) / f"plain{attempt}.db"
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE a (id TEXT PRIMARY KEY, body TEXT)")
            samples = []
            for i in range(count):
                started = time.perf_counter()
                conn.execute("INSERT INTO a VALUES (?, ?) ON CONFLICT DO NOTHING", (str(i), body))
                samples.append((time.perf_counter() - started) * 1000)
            print(f"sqlite3 insert+commit          {percentiles(samples)}")
            try:
                import sqlalchemy as sa  # type: ignore[import-not-found, unused-ignore]
                from sqlalchemy.dialects.sqlite import insert  # type: ignore[import-not-found, unused-ignore]
            except ImportError:
                print("SQLAlchemy Core                not installed (pip install sqlalchemy to compare)")
                continue
            engine = sa.create_engine(f"sqlite:///{Path(tmp) / f'alchemy{attempt}.db'}")
            meta = sa.MetaData()
            table = sa.Table("a", meta, sa.Column("id", sa.Text, primary_key=True), sa.Column("body", sa.Text))
            meta.create_all(engine)
            samples = []
            with engine.connect() as alchemy:
                alchemy.exec_driver_sql("PRAGMA journal_mode=WAL")
                alchemy.exec_driver_sql("PRAGMA synchronous=FULL")
                for i in range(count):
                    started = time.perf_counter()
                    alchemy.execute(insert(table).values(id=str(i), body=body).on_conflict_do_nothing())
                    alchemy.commit()
                    samples.append((time.perf_counter() - started) * 1000)
            print(f"SQLAlchemy Core insert+commit  {percentiles(samples)}")


async def main_async(args: argparse.Namespace) -> None:
    print(
        f"{args.schools} gateways reporting every {args.report_every:g} s + {args.rate} alarms/s for "
        f"{args.seconds:g} s (2 cores shared with the load generator and other work: figures are noisy)"
    )
    await floor(args)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with center_process(workdir, f"sqlite:///{workdir / 'center.db'}", args.schools, "sqlite") as (base, pid):
            await scenario("center, SQLite", [base], [pid], args)
        with PostgresServer() as pg:
            url = pg.new_database()
            with center_process(workdir, url, args.schools, "pg") as (base, pid):
                await scenario("center, PostgreSQL", [base], [pid], args)
            url = pg.new_database()
            with (
                center_process(workdir, url, args.schools, "pg-a") as (base_a, pid_a),
                center_process(workdir, url, args.schools, "pg-b") as (base_b, pid_b),
            ):
                await scenario("two centers, one PostgreSQL", [base_a, base_b], [pid_a, pid_b], args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--drivers", action="store_true")
    parser.add_argument("--schools", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--report-every", type=float, default=30.0)
    args = parser.parse_args()
    if args.drivers:
        drivers()
        return
    if args.quick:
        args.schools, args.seconds = 300, 3.0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
