"""The `huxiao` command line: parse, load the config, set up logging, hand over. No logic lives here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.domain.config import GatewayConfig, load_config
from gateway.domain.errors import ConfigError, GatewayError
from gateway.logging_setup import setup_logging

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _load(path: Path) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


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
    setup_logging(args.log_level)
    print(f"huxiao-gateway: {config.school.name} on http://{config.web.listen}/", flush=True)
    # run_app turns SIGTERM/SIGINT into a graceful exit; parts then stop in reverse order, well inside 5 s.
    web.run_app(
        create_app(config),
        host=config.web.host,
        port=config.web.port,
        shutdown_timeout=2.0,
        print=None,
        access_log=None,
    )
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
    from gateway.commands.patrol import run_patrol

    config = _load(args.config)
    setup_logging("ERROR")
    return run_patrol(config, args.out)


def cmd_discover(args: argparse.Namespace) -> int:
    from gateway.commands.discover import run_discover

    return run_discover(args.timeout, args.target)


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

    setup_logging(args.log_level)
    return run_demo(workdir=args.workdir, web_port=args.port)


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
        print(f"huxiao: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
