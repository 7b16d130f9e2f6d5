"""GB/T 28181 live video: the relay (gateway.services.live_video) against its floor and two off-the-shelf pulls.

The cameras are GStreamer's RTSP server (simulators/rtsp_server.py, `pattern:codec:kbps` mounts, one encoder per
spec shared by its mounts, in a process of its own); the relay and the small UDP receivers standing in for the
platform run here, so this process's CPU time is the relay's plus the receivers' (a few microseconds a packet).
Printed side by side, measured in the same run:
- open()+start() → first RTP packet, the camera's RTSP not yet open (cold) and already pulled by a viewer (warm);
- CPU per 4 Mbit/s stream: the relay (RTSP → access units → PS → RTP → UDP), the floor (the same RTP bytes
  copied socket to socket, no muxing), PyAV (FFmpeg's RTSP demuxer and its MPEG-PS muxer, in memory) and
  GStreamer (rtspsrc ! depay ! parse ! mpegpsmux ! fakesink, as a process of its own);
- 32 streams of 2 Mbit/s at once: frames lost anywhere (camera → relay, relay queue, relay → receiver), CPU.

    .venv/bin/python bench/live_video.py
    .venv/bin/python bench/live_video.py --seconds 20 --streams 32

Needs the simulator's `pattern:codec:kbps` spec; with a simulator that lacks it, point `--server-script` at one
that has it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import simulators.rtsp as rtsp_sim  # noqa: E402
from adapters.gb28181.live import MediaOffer, MediaTransport, PlaySession  # noqa: E402
from adapters.rtsp.session import RtspPlayer  # noqa: E402
from gateway.domain.errors import GatewayError  # noqa: E402
from gateway.services.live_video import CameraStream, LiveVideoRelay, RelaySession  # noqa: E402
from simulators.rtsp import RtspServer  # noqa: E402

SSRC = 1_234_567_890
CHANNEL = "34020000001320000001"
# Big receive buffers: on a loaded 2-core machine the receivers may be scheduled late; a drop in our own
# receiver's socket would be counted against the relay.
RECEIVE_BUFFER = 8 * 1024 * 1024
TARGET_COLD_MS = 500.0
TARGET_WARM_MS = 100.0
TARGET_CPU_PER_4MBIT = 3.0


class Sink(asyncio.DatagramProtocol):
    """A platform's RTP receiver, reduced to what the figures need."""

    def __init__(self, ssrc: int) -> None:
        self.ssrc = ssrc
        self.packets = 0
        self.bytes = 0
        self.frames = 0
        self.gaps = 0
        self.first_at: float | None = None
        self._sequence: int | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.packets += 1
        self.bytes += len(data)
        sequence = int.from_bytes(data[2:4], "big")
        if self._sequence is not None and sequence != (self._sequence + 1) & 0xFFFF:
            self.gaps += 1
        self._sequence = sequence
        if data[1] & 0x80:
            self.frames += 1


async def sink(ssrc: int) -> tuple[Sink, asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind(("127.0.0.1", 0))
    receiver = Sink(ssrc)
    transport, _ = await loop.create_datagram_endpoint(lambda: receiver, sock=sock)
    return receiver, transport, int(sock.getsockname()[1])


async def until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.001)
    return False


def lookup_for(server: RtspServer) -> object:
    async def lookup(camera_id: str) -> CameraStream | None:
        return CameraStream(server.url(camera_id))

    return lookup


async def play(relay: LiveVideoRelay, camera: str, ssrc: int) -> tuple[PlaySession, Sink, asyncio.DatagramTransport]:
    receiver, transport, port = await sink(ssrc)
    session = await relay.open(MediaOffer(CHANNEL, camera, "127.0.0.1", port, MediaTransport.UDP, ssrc))
    await session.start()
    return session, receiver, transport


async def first_packet(server: RtspServer, rounds: int) -> None:
    cold: list[float] = []
    ready: list[float] = []
    warm: list[float] = []
    async with LiveVideoRelay(lookup_for(server), bind_host="127.0.0.1") as relay:  # type: ignore[arg-type]
        for index in range(rounds):
            camera = f"lat-{index}"
            receiver, transport, port = await sink(SSRC)
            started = time.perf_counter()
            session = await relay.open(MediaOffer(CHANNEL, camera, "127.0.0.1", port, MediaTransport.UDP, SSRC))
            ready.append((time.perf_counter() - started) * 1000)
            await session.start()
            await until(lambda r=receiver: r.first_at is not None, 10)
            assert receiver.first_at is not None
            cold.append((receiver.first_at - started) * 1000)
            await asyncio.sleep(0.3)  # into the GOP, so the warm viewer's start is not a fresh key frame's
            second, transport_b, port_b = await sink(SSRC + 1)
            started = time.perf_counter()
            other = await relay.open(MediaOffer(CHANNEL, camera, "127.0.0.1", port_b, MediaTransport.UDP, SSRC + 1))
            await other.start()
            await until(lambda r=second: r.first_at is not None, 10)
            assert second.first_at is not None
            warm.append((second.first_at - started) * 1000)
            await other.stop()
            await session.stop()
            transport.close()
            transport_b.close()
    print(f"first RTP packet after open()+start(), {rounds} rounds (median / max):")
    print(
        f"  cold (RTSP not open):     {statistics.median(cold):7.1f} / {max(cold):7.1f} ms   "
        f"target <= {TARGET_COLD_MS:.0f} ms; of which open() (RTSP DESCRIBE/SETUP/PLAY): "
        f"{statistics.median(ready):.1f} / {max(ready):.1f} ms, the rest waits for the camera's next key frame"
    )
    print(
        f"  warm (another viewer):    {statistics.median(warm):7.1f} / {max(warm):7.1f} ms   "
        f"target <= {TARGET_WARM_MS:.0f} ms (from the cached GOP)"
    )


@dataclass(frozen=True, slots=True)
class Cpu:
    percent: float  # of one core
    mbit_s: float  # what the camera actually sent

    def per_4mbit(self) -> float:
        return self.percent * 4.0 / self.mbit_s if self.mbit_s else float("nan")


async def cpu_relay(server: RtspServer, camera: str, seconds: float) -> Cpu:
    async with LiveVideoRelay(lookup_for(server), bind_host="127.0.0.1") as relay:  # type: ignore[arg-type]
        session, receiver, transport = await play(relay, camera, SSRC)
        await until(lambda: receiver.frames > 0, 10)
        bytes0, cpu0, wall0 = receiver.bytes, time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall, sent = time.process_time() - cpu0, time.perf_counter() - wall0, receiver.bytes - bytes0
        await session.stop()
        transport.close()
    return Cpu(100 * cpu / wall, sent * 8 / wall / 1e6)


async def cpu_floor(server: RtspServer, camera: str, seconds: float) -> Cpu:
    """The same RTP bytes from the RTSP connection straight to a UDP socket: no depacketizing, no muxing."""
    _receiver, transport, port = await sink(SSRC)
    loop = asyncio.get_running_loop()
    out, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port))
    async with RtspPlayer(camera, server.url(camera)) as player:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        sent = 0
        async for packet in player.packets():
            out.sendto(packet)
            sent += len(packet)
            if time.perf_counter() - wall0 >= seconds:
                break
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    out.close()
    transport.close()
    return Cpu(100 * cpu / wall, sent * 8 / wall / 1e6)


def cpu_pyav(url: str, seconds: float) -> Cpu | str:
    """PyAV: FFmpeg's RTSP client demuxing, its MPEG-PS muxer writing to memory (no RTP: a lower bound)."""
    try:
        import av  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "PyAV not installed (pip install av)"
    source = av.open(url, options={"rtsp_transport": "tcp"}, timeout=10)
    stream = source.streams.video[0]
    buffer = io.BytesIO()
    target = av.open(buffer, mode="w", format="mpeg")
    out_stream = target.add_stream_from_template(stream)
    cpu0, wall0, sent = time.thread_time(), time.perf_counter(), 0
    for packet in source.demux(stream):
        if packet.dts is None:
            continue
        sent += packet.size
        packet.stream = out_stream
        target.mux(packet)
        if buffer.tell() > 1 << 24:
            buffer.seek(0)
            buffer.truncate()
        if time.perf_counter() - wall0 >= seconds:
            break
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    source.close()
    return Cpu(100 * cpu / wall, sent * 8 / wall / 1e6)


def cpu_gstreamer(url: str, codec: str, seconds: float) -> Cpu | str:
    """GStreamer's own pull and PS muxer as a process of its own; its CPU from the kernel's child accounting."""
    depay = "rtph265depay ! h265parse" if codec == "h265" else "rtph264depay ! h264parse"
    pipeline = f"rtspsrc location={url} protocols=tcp latency=0 ! {depay} ! mpegpsmux ! fakesink"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["gst-launch-1.0", "-q", *pipeline.split()], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=10)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if wall < seconds * 0.9:
        return f"gst-launch-1.0 quit early: {proc.stderr.read().decode()[-200:] if proc.stderr else ''}"
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Cpu(100 * cpu / wall, float("nan"))


async def many(server: RtspServer, count: int, seconds: float) -> None:
    cameras = [f"many-{i:02d}" for i in range(count)]
    async with LiveVideoRelay(lookup_for(server), bind_host="127.0.0.1") as relay:  # type: ignore[arg-type]
        plays = [await play(relay, camera, SSRC + i) for i, camera in enumerate(cameras)]
        await until(lambda: all(p[1].frames > 0 for p in plays), 20)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        bytes0 = sum(p[1].bytes for p in plays)
        lost_before = sum(s.frames_lost for s in relay.stats().values())
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        mbit = (sum(p[1].bytes for p in plays) - bytes0) * 8 / wall / 1e6
        stats = relay.stats()
        lost_camera = sum(s.frames_lost for s in stats.values()) - lost_before
        sessions = [p[0] for p in plays]
        overflows = sum(s.overflows for s in sessions if isinstance(s, RelaySession))
        for session, _, _ in plays:
            await session.stop()  # no more sending: what was sent can now be compared with what arrived
        # The last frames in flight on loopback, read by a loop that may be late on a loaded machine: bounded.
        await until(lambda: all(r.frames >= s.frames_sent for s, r, _ in plays if isinstance(s, RelaySession)), 2)
        short = sum(1 for s, r, _ in plays if isinstance(s, RelaySession) and r.frames != s.frames_sent)
        gaps = sum(p[1].gaps for p in plays)
        frames = sum(p[1].frames for p in plays)
        for _, _, transport in plays:
            transport.close()
    print(f"{count} streams at once for {wall:.0f} s: {mbit:.1f} Mbit/s out in all, {frames} frames received")
    print(f"  (before the window, while {count} RTSP sessions started: {lost_before} frames lost camera→relay)")
    print(
        f"  frames lost: camera→relay {lost_camera}, relay queue overflows {overflows}, "
        f"viewers short of what was sent {short}, RTP sequence gaps {gaps}   target: 0"
    )
    print(f"  CPU: {100 * cpu / wall:.1f}% of one core (2 cores = 200%)")


def show(name: str, figure: Cpu | str) -> None:
    if isinstance(figure, str):
        print(f"  {name:42s} {figure}")
    elif figure.mbit_s != figure.mbit_s:  # NaN: the tool reports no byte count
        print(f"  {name:42s} {figure.percent:5.2f}% of one core")
    else:
        print(
            f"  {name:42s} {figure.percent:5.2f}% of one core at {figure.mbit_s:.2f} Mbit/s"
            f" = {figure.per_4mbit():5.2f}% per 4 Mbit/s"
        )


async def run(args: argparse.Namespace) -> None:
    spec4, spec2 = f"moving:{args.codec}:4000", f"moving:{args.codec}:2000"
    streams = {f"lat-{i}": spec2 for i in range(args.rounds)}
    streams |= {"cpu-relay": spec4, "cpu-floor": spec4, "cpu-pyav": spec4, "cpu-gst": spec4}
    streams |= {f"many-{i:02d}": spec2 for i in range(args.streams)}
    async with RtspServer(streams) as server:
        await first_packet(server, args.rounds)
        print(f"CPU per stream ({args.codec}, camera set to 4 Mbit/s, {args.seconds:g} s each; this process):")
        relay = await cpu_relay(server, "cpu-relay", args.seconds)
        floor = await cpu_floor(server, "cpu-floor", args.seconds)
        show("relay (RTSP → PS → RTP/UDP)", relay)
        show("floor (RTP copied socket to socket)", floor)
        show(
            "PyAV (FFmpeg demux + mpeg mux, no RTP)",
            await asyncio.to_thread(cpu_pyav, server.url("cpu-pyav"), args.seconds),
        )
        show(
            "GStreamer (rtspsrc … mpegpsmux, no RTP)",
            await asyncio.to_thread(cpu_gstreamer, server.url("cpu-gst"), args.codec, args.seconds),
        )
        print(f"  target: relay <= {TARGET_CPU_PER_4MBIT:g}% of one core per 4 Mbit/s")
        await many(server, args.streams, args.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each CPU and many-stream run")
    parser.add_argument("--rounds", type=int, default=5, help="first-packet rounds, each on a camera not yet open")
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--codec", choices=("h264", "h265"), default="h264")
    parser.add_argument("--server-script", type=Path, help="an RTSP simulator script other than the project's")
    args = parser.parse_args()
    if args.server_script:
        rtsp_sim.SERVER_SCRIPT = args.server_script.resolve()
    try:
        asyncio.run(run(args))
    except GatewayError as exc:
        # Most likely a simulator without `pattern:codec:kbps` mounts: say so instead of a traceback.
        sys.exit(f"live_video bench: {exc} (does the RTSP simulator take pattern:codec:kbps? see --server-script)")


if __name__ == "__main__":
    main()
