#!/usr/bin/python3
"""A real RTSP server (GStreamer's gst-rtsp-server) serving test pictures, one mount per camera.

Runs under the system interpreter, which has Debian's python3-gi (the project's virtualenv does not):

    /usr/bin/python3 simulators/rtsp_server.py --port 8554 --streams gate-1=moving,hall=black,roof=moving:h265
    /usr/bin/python3 simulators/rtsp_server.py --port 8554 --auth-port 8555 --user admin --password secret

Every mount serves 640x360 H.264 (or H.265 with `:h265`) at 15 fps, a key frame a second, under bitrate control
(512 kbit/s, or `:h264:256` for another) with a burnt-in clock, as school cameras' sub-streams are encoded.
The patterns are what a video patrol has to tell apart: a live picture, a black one, a frozen one, a
covered lens, a blurred picture, a colour cast, too dark, too bright. Port 0 means "any free port"; the ports
really bound are printed on the READY line (`READY <port> <auth port or 0> <mounts>`), so a test never races
another process for a port it picked beforehand. With a password, a second server on the auth port serves the
same mounts behind RTSP digest authentication. Standard library and gi only: it must not import the project.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# Frames as a school camera's sub-stream sends them: 640x360 at 15 fps (cameras send 15-25).
FPS = 15
CAPS = f"video/x-raw,width=640,height=360,framerate={FPS}/1"
# A key frame a second (cameras use 1-2 s): a client, and OpenCV, gets its first picture within a second.
GOP_FRAMES = FPS
# A sub-stream's usual budget; the spec's third field (`moving:h264:256`) sets another.
DEFAULT_KBPS = 512
# The camera's burnt-in clock, drawn after the picture is made, as the encoder chip of a camera does: it keeps
# ticking when the sensor or ISP hangs.
OSD = (
    'clockoverlay time-format="%Y-%m-%d %H:%M:%S" halignment=left valignment=top font-desc="Sans 11" '
    "draw-outline=true shaded-background=false"
)
# Bitrate control as real cameras encode (constant bit rate, a VBV buffer of a few hundred ms), not a constant
# quantizer: under rate control a picture that no longer changes is still re-encoded at a quantizer that varies
# from key frame to key frame, so the decoded frames of a frozen camera differ by compression noise.
ENCODE = (
    f"{OSD} ! videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast "
    f"key-int-max={GOP_FRAMES} pass=cbr bitrate={{kbps}} vbv-buf-capacity=500 "
    "! rtph264pay name=pay0 pt=96 config-interval=1"
)
# The same as H.265, for the probe's HEVC path (x265 costs more CPU: only mounts asking for it use it).
ENCODE_H265 = (
    f"{OSD} ! videoconvert ! video/x-raw,format=I420 ! x265enc tune=zerolatency speed-preset=ultrafast "
    f"key-int-max={GOP_FRAMES} bitrate={{kbps}} ! rtph265pay name=pay0 pt=96 config-interval=1"
)
CODECS = {"h264": ENCODE, "h265": ENCODE_H265}
SCENE = "videotestsrc is-live=true pattern=smpte"
# The live card drifts 2 px a frame: 30 px a second at 15 fps. Not 3: 2 s of drift would then be 90 px, all but
# the width of one of the card's seven bars (91 px), and a dark, low-contrast card would look the same again.
DRIFT = "horizontal-speed=2"
# A still scene with detail in it: the SMPTE card (its bottom right is a patch of noise) with its noise frozen.
STILL_SCENE = "videotestsrc pattern=smpte num-buffers=1 ! imagefreeze is-live=true"

PATTERNS = {
    # A live picture: the test card drifts sideways, so two frames a second apart differ.
    "moving": f"{SCENE} {DRIFT} ! {CAPS}",
    "black": f"videotestsrc is-live=true pattern=black ! {CAPS}",
    # The usual field failure: the sensor or ISP hung on its last picture while the encoder keeps encoding it
    # (and the clock keeps ticking). Under rate control its frames differ by compression noise only.
    "frozen": f"{STILL_SCENE} ! {CAPS}",
    # Live, though nothing moves: a still scene (the card) with a live noisy area, the sensor's noise in a dark
    # patch of it (the card's own noise patch, new each frame). Must not be taken for frozen.
    "still": f"{SCENE} ! {CAPS}",
    # A hand or cloth over the lens: almost uniform dark grey, no edges.
    "covered": f"videotestsrc is-live=true pattern=solid-color foreground-color=0xff2b2b2b ! {CAPS}",
    # Out of focus or a smeared window: the scene at 1/16 of its size scaled back up.
    "blurred": (f"{SCENE} {DRIFT} ! {CAPS} ! videoscale ! video/x-raw,width=40,height=22 ! videoscale ! {CAPS}"),
    # A failing sensor or white balance: the scene under a strong red tint.
    "color_cast": (
        "compositor name=mix sink_1::alpha=0.55 ! " + CAPS + " ! {encode} "
        f"{SCENE} {DRIFT} ! {CAPS} ! videobalance saturation=0.3 ! mix.sink_0 "
        f"videotestsrc is-live=true pattern=solid-color foreground-color=0xffd01010 ! {CAPS} ! mix.sink_1"
    ),
    "too_dark": f"{SCENE} {DRIFT} ! {CAPS} ! videobalance brightness=-0.55 contrast=0.35",
    "too_bright": f"{SCENE} {DRIFT} ! {CAPS} ! videobalance brightness=0.8 contrast=0.3",
}


def parse_spec(spec: str) -> tuple[str, str, int]:
    """`pattern[:codec[:kbps]]` to (pattern, codec, kbps); ValueError naming what is wrong."""
    pattern, _, rest = spec.partition(":")
    codec, _, kbps_text = rest.partition(":")
    codec = codec or "h264"
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; known: {', '.join(PATTERNS)}")
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; known: {', '.join(CODECS)}")
    if not kbps_text:
        return pattern, codec, DEFAULT_KBPS
    if not kbps_text.isdigit() or not 16 <= int(kbps_text) <= 100_000:
        raise ValueError(f"bad bitrate {kbps_text!r} in {spec!r}: kbit/s, 16 to 100000")
    return pattern, codec, int(kbps_text)


def launch_line(pattern: str, codec: str = "h264", kbps: int = DEFAULT_KBPS) -> str:
    template = PATTERNS[pattern]
    encode = CODECS[codec].format(kbps=kbps)
    if "{encode}" in template:
        return "( " + template.format(encode=encode) + " )"
    return f"( {template} ! {encode} )"


VIEWER_ROLE = "viewer"
KEPT: list[GstRtspServer.RTSPMedia] = []


def _keep(media: GstRtspServer.RTSPMedia) -> bool:
    media.prepare(None)  # one more count: viewers' prepare/unprepare pairs never bring it back to zero
    KEPT.append(media)
    return False


def _not_seekable(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    query = info.get_query()
    if query is not None and query.type == Gst.QueryType.SEEKING:
        # Answered as it was asked: a new seeking query says "not seekable" until an element says otherwise (the
        # bindings hold a reference to it, so it cannot be written here).
        return Gst.PadProbeReturn.HANDLED
    return Gst.PadProbeReturn.OK


def _configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
    """Every media as a camera's encoder is: live, not seekable, and running between viewers.

    - Not seekable: videotestsrc answers that it can seek, so every PLAY with `Range: npt=0.000-` (FFmpeg and
      OpenCV send one) made a flushing seek of the shared pipeline, back to time 0 under every other viewer. A
      second PLAY arriving during that flush found no segment on the stream and GStreamer's
      `gst_rtsp_media_get_rates` aborted the whole server (`assertion failed: (FALSE)`, SIGABRT). A camera
      ignores the range of a live stream; so does this server now.
    - Kept prepared: a client that only DESCRIBEs (every health probe) unprepares the shared media when it hangs
      up; a viewer arriving meanwhile gets 503 or no frames. The server's own extra prepare count keeps it up.
    """
    payloader = media.get_element().get_by_name("pay0")
    payloader.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, _not_seekable)
    media.connect("prepared", lambda prepared: GLib.idle_add(_keep, prepared))


class PatternFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]  # gi has no type stubs
    """One pipeline per pattern, whatever the number of mounts showing it.

    The default media key is the request URL, so each mount would get its own encoder: a 100-camera bench would
    run 100 x264 instances on 2 cores. Keyed by the pattern instead, `cam-001=moving` ... `cam-100=moving` all
    watch one shared pipeline, as many viewers of one camera do.
    """

    def __init__(self, spec: str) -> None:
        super().__init__()
        self.spec = spec

    def do_gen_key(self, _url: GstRtsp.RTSPUrl) -> str:
        return self.spec


def make_factory(spec: str, role: str | None) -> GstRtspServer.RTSPMediaFactory:
    factory = PatternFactory(spec)
    factory.set_launch(launch_line(*parse_spec(spec)))
    # Shared: every client of a mount watches the same pipeline, as with a camera's one encoder.
    factory.set_shared(True)
    # Health probes DESCRIBE and hang up without TEARDOWN; by default that stops the shared media, and a probe
    # arriving while it is being torn down gets 503. A camera's encoder does not stop when a viewer leaves.
    factory.set_stop_on_disconnect(False)
    factory.connect("media-configure", _configure)
    if role is not None:
        # Only clients holding the role may see the media; the server without auth never checks it.
        permissions = Gst.Structure.new_from_string(
            f"{role}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )
        factory.add_role_from_structure(permissions)
    return factory


def make_server(
    port: int, mounts: dict[str, GstRtspServer.RTSPMediaFactory], auth: tuple[str, str] | None
) -> GstRtspServer.RTSPServer:
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    # The default listen backlog is 5: a health round opening hundreds of connections at once would see
    # SYNs dropped and retried seconds later. Real cameras take one client at a time; this server stands in
    # for hundreds of cameras.
    server.set_backlog(1024)
    if auth is not None:
        checker = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", VIEWER_ROLE)
        checker.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        checker.add_digest(auth[0], auth[1], token)
        server.set_auth(checker)
    points = server.get_mount_points()
    for name, factory in mounts.items():
        points.add_factory(f"/{name}", factory)
    return server


def parse_streams(text: str) -> dict[str, str]:
    """`name=pattern[:codec[:kbps]],...` to {name: spec}; every pattern is also mounted as itself."""
    streams = {pattern: pattern for pattern in PATTERNS}
    for item in filter(None, text.split(",")):
        name, _, spec = item.strip().partition("=")
        spec = spec or name
        parse_spec(spec)
        if not name or "/" in name:
            raise ValueError(f"bad mount name {name!r}")
        streams[name] = spec
    return streams


def main() -> None:
    parser = argparse.ArgumentParser(description="test-pattern RTSP server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (the READY line tells which)")
    parser.add_argument(
        "--streams", default="", help="name=pattern[:h264|h265[:kbps]],... (every pattern is also mounted as itself)"
    )
    parser.add_argument("--auth-port", type=int, default=0, help="port of the digest-auth server (0: any free)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="", help="starts the digest-auth server when given")
    args = parser.parse_args()
    try:
        streams = parse_streams(args.streams)
    except ValueError as exc:
        # On stdout, where the starter reads READY: it then reports why the server did not start.
        print(f"FAILED {exc}", flush=True)
        sys.exit(2)
    Gst.init(None)
    # One factory per pattern, shared by its mounts and by both servers: one encoder per pattern in all.
    factories = {spec: make_factory(spec, VIEWER_ROLE) for spec in set(streams.values())}
    mounts = {name: factories[spec] for name, spec in streams.items()}
    servers = [make_server(args.port, mounts, None)]
    if args.password:
        servers.append(make_server(args.auth_port, mounts, (args.user, args.password)))
    bound = []
    for server in servers:
        if server.attach(None) == 0:
            print(f"FAILED to listen on 127.0.0.1:{server.get_service()}", flush=True)
            sys.exit(1)
        bound.append(server.get_bound_port())
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    auth_port = bound[1] if len(bound) > 1 else 0
    print(f"READY {bound[0]} {auth_port} {len(streams)}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
