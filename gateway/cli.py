"""The `huxiao` command line: parse, load the config, set up logging, hand over. No logic lives here."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.domain.config import GatewayConfig, load_config, secret_values
from gateway.domain.errors import ConfigError, GatewayError
from gateway.logging_setup import hide, redact, setup_logging

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

# The usual reasons a listening socket cannot be opened, in the words a user acts on.
BIND_ERRORS = {
    errno.EADDRINUSE: "the port is already in use (another gateway or program holds it)",
    errno.EACCES: "permission denied (ports below 1024 need root)",
    errno.EADDRNOTAVAIL: "this machine has no such address",
}


def _load(path: Path) -> GatewayConfig:
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(redact(problem), file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    hide(secret_values(config))
    return config


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    print(
        f"{args.config}: OK — {config.school.name} ({config.school.id}): {len(config.cameras)} cameras, "
        f"{len(config.buttons)} buttons, {len(config.upstreams)} upstreams"
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.app import create_app

    config = _load(args.config)
    # Checked before storage and the parts start, so a taken port is one line, not a start and a stop.
    problem = _bind_problem(config.web.host, config.web.port)
    if problem:
        print(
            f"huxiao run: cannot listen on {config.web.listen}: {problem}; set another web.listen in {args.config}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    setup_logging(args.log_level)
    print(f"huxiao-gateway: {config.school.name} on http://{config.web.listen}/", flush=True)
    # run_app turns SIGTERM/SIGINT into a graceful exit; parts then stop in reverse order, well inside 5 s.
    try:
        web.run_app(
            create_app(config),
            host=config.web.host,
            port=config.web.port,
            shutdown_timeout=2.0,
            print=None,
            access_log=None,
        )
    except OSError as exc:
        if exc.errno not in BIND_ERRORS:
            raise
        print(
            f"huxiao run: cannot listen on {config.web.listen}: {BIND_ERRORS[exc.errno]};"
            f" set another web.listen in {args.config}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def cmd_probe(args: argparse.Namespace) -> int:
    from gateway.commands.probe import run_probe

    config = _load(args.config)
    setup_logging("ERROR")
    return run_probe(config, args.json)


def cmd_outbox(args: argparse.Namespace) -> int:
    from gateway.commands.outbox import outbox_report

    config = _load(args.config)
    print(outbox_report(config.storage.path))
    return EXIT_OK


def cmd_patrol(args: argparse.Namespace) -> int:
    from gateway.commands.patrol import check_out_folder, run_patrol

    config = _load(args.config)
    check_out_folder(args.out)
    setup_logging("ERROR")
    return run_patrol(config, args.out)


def cmd_discover(args: argparse.Namespace) -> int:
    from gateway.commands.discover import run_discover

    return run_discover(args.timeout, args.target)


def cmd_press(args: argparse.Namespace) -> int:
    from gateway.commands.press import press, target_from_broker, target_from_config

    if args.broker:
        if not args.school:
            print("huxiao press: --broker needs --school (the school id in the topic)", file=sys.stderr)
            return EXIT_CONFIG
        target = target_from_broker(args.broker, args.school, args.button, args.prefix)
    else:
        path = args.config or (args.workdir / "school.yaml" if args.workdir else None)
        if path is None:
            print(
                "huxiao press: say where the broker is: -c FILE, --workdir DIR (the demo's) or --broker URL",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        if args.workdir and not path.exists():
            print(
                f"huxiao press: {path} does not exist: is the demo running with --workdir {args.workdir}?",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        target = target_from_config(_load(path), args.button)
    event_id = press(target, args.button, args.type)
    print(f"按下 pressed {args.button} ({args.type}) → {target.topic}  event id {event_id}")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    from gateway.commands.watch import watch

    out = args.out or Path(f"{args.camera}.ps")
    recording = watch(args.platform, args.camera, args.seconds, out)
    print(
        f"观看 watched {args.camera} for {args.seconds:g} s: {recording.size} bytes of MPEG-PS"
        f" ({recording.rtp_packets} RTP packets) in {recording.path}\n  play it: ffplay {recording.path}"
    )
    return EXIT_OK


def cmd_center(args: argparse.Namespace) -> int:
    from center.app import run_center
    from center.config import load_center_config

    try:
        config = load_center_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(args.log_level)
    print(f"huxiao center: {len(config.schools)} schools on http://{config.center.listen}/", flush=True)
    run_center(config)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    if args.port:
        problem = _bind_problem("127.0.0.1", args.port)
        if problem:
            print(
                f"huxiao demo: cannot serve the status page on 127.0.0.1:{args.port}: {problem};"
                f" pick another with --port (e.g. --port {args.port + 1}, or --port 0 for any free port)",
                file=sys.stderr,
            )
            return EXIT_FAILED
    setup_logging(args.log_level)
    return run_demo(workdir=args.workdir, web_port=args.port)


def _bind_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on now, or None (checked before the demo starts its simulators)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        # As aiohttp does: a port left in TIME_WAIT by the last demo is free, a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return BIND_ERRORS.get(exc.errno or 0, exc.strerror or str(exc))
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="huxiao",
        description="护校 gateway: campus cameras and one-click alarms, linked to the police platform",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add("run", cmd_run, "run the gateway").add_argument("-c", "--config", type=Path, required=True)
    add("check-config", cmd_check_config, "validate a config file (exit 2 with file:line: message)").add_argument(
        "-c", "--config", type=Path, required=True
    )
    probe = add("probe", cmd_probe, "poll every camera once; table or --json; exit 1 below the target")
    probe.add_argument("-c", "--config", type=Path, required=True)
    probe.add_argument("--json", action="store_true", help="machine-readable output")
    add("outbox", cmd_outbox, "alarms and events pending and delivered per upstream").add_argument(
        "-c", "--config", type=Path, required=True
    )
    patrol = add("patrol", cmd_patrol, "one video-patrol round now, written as a report with pictures")
    patrol.add_argument("-c", "--config", type=Path, required=True)
    patrol.add_argument("--out", type=Path, required=True, help="folder for index.html, patrol.json/csv, thumbnails")
    discover = add("discover", cmd_discover, "find ONVIF cameras (WS-Discovery) and print config entries")
    discover.add_argument("--timeout", type=float, default=3.0, help="seconds to collect answers")
    discover.add_argument("--target", default=None, help="host:port for a directed probe (default: multicast)")
    press = add("press", cmd_press, "press an alarm button: one QoS 1 message on its topic, as the device sends it")
    press.add_argument("button", help="the button id, e.g. guard-room")
    press.add_argument("type", nargs="?", default="panic", choices=["panic", "test", "cancel"])
    where = press.add_mutually_exclusive_group()
    where.add_argument("-c", "--config", type=Path, help="the gateway's config: its broker and school")
    where.add_argument("--workdir", type=Path, help="the demo's workdir (uses its school.yaml), e.g. var/demo")
    where.add_argument("--broker", help="mqtt://host:port, with --school")
    press.add_argument("--school", help="the school id (with --broker)")
    press.add_argument("--prefix", default="huxiao", help="topic prefix (with --broker)")
    watch = add("watch", cmd_watch, "have a GB/T 28181 platform console (the demo's) play a camera; save N s of PS")
    watch.add_argument("camera", help="the camera id, e.g. gate-1 (or its 20-digit channel id)")
    watch.add_argument("--platform", required=True, help="the console's http://host:port (the demo prints it)")
    watch.add_argument("--seconds", type=float, default=5.0, help="how long to record (1 to 60)")
    watch.add_argument("--out", type=Path, help="where to save the PS (default: CAMERA.ps here)")
    add("center", cmd_center, "run the command center: alarms and reports from many gateways").add_argument(
        "-c", "--config", type=Path, required=True
    )
    demo = add("demo", cmd_demo, "run a simulated school and the gateway on localhost")
    demo.add_argument("--workdir", type=Path, default=Path("var/demo"), help="where the demo keeps its files")
    demo.add_argument("--port", type=int, default=8080, help="status page port (0: any free port)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except GatewayError as exc:
        print(redact(f"huxiao {args.command}: {exc}"), file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        # The last net for the file and socket mistakes not named above: one line, never a traceback.
        where = f": {exc.filename}" if exc.filename else ""
        print(redact(f"huxiao {args.command}: {exc.strerror or exc}{where}"), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception:  # a bug: its traceback still goes out, but through the same redaction as the log
        print(redact(f"huxiao: crashed:\n{traceback.format_exc()}"), file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
