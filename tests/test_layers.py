"""The folders are the layers, and every import runs downwards.

    gateway/domain      config models, domain types, errors          (imports nothing of ours)
    adapters/           protocol edges: bytes in and out             (domain)
    monitoring/         pure measurement                             (domain)
    gateway/services    the core: alarm path, outbox, health, patrol (domain, adapters, monitoring)
    simulators/         stand-ins for cameras, buttons, platforms    (domain, adapters, monitoring)
    gateway/faces       web, metrics, report pages                   (the above but simulators)
    gateway/commands    CLI verbs                                    (the above)
    gateway/*.py        the composition root: app, cli, demo         (anything, the center too)
    center/             the command center (second wave)             (domain, adapters, monitoring, services)

A module may import its own layer's modules and those its layer lists; nothing else of the project.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO

BELOW = {
    "gateway.domain": set(),
    "adapters": {"gateway.domain"},
    "monitoring": {"gateway.domain"},
    "gateway.services": {"gateway.domain", "adapters", "monitoring"},
    "simulators": {"gateway.domain", "adapters", "monitoring"},
    "gateway.faces": {"gateway.domain", "adapters", "monitoring", "gateway.services"},
    "gateway.commands": {"gateway.domain", "adapters", "monitoring", "gateway.services", "gateway.faces"},
    "gateway": {
        "gateway.domain",
        "adapters",
        "monitoring",
        "gateway.services",
        "gateway.faces",
        "gateway.commands",
        "simulators",
        "center",
    },
    "center": {"gateway.domain", "adapters", "monitoring", "gateway.services"},
}
OURS = ("gateway", "adapters", "monitoring", "simulators", "center")


def layer_of(module: str) -> str | None:
    """The most specific layer a dotted module name belongs to."""
    best = None
    for layer in BELOW:
        if (module == layer or module.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, here: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level)[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from gateway import faces` imports the subpackage gateway.faces
            found += [
                (node.lineno, f"{target}.{alias.name}")
                for alias in node.names
                if layer_of(f"{target}.{alias.name}") not in (None, layer_of(target))
            ]
    return [(line, name) for line, name in found if name.split(".")[0] in OURS]


def sources() -> list[Path]:
    return sorted(p for top in OURS if (REPO / top).is_dir() for p in (REPO / top).rglob("*.py"))


def violations(path: Path) -> list[str]:
    here = module_name(path)
    own = layer_of(here)
    assert own is not None, f"{here} is in no layer: add its folder to BELOW"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    wrong = []
    for line, target in imported(tree, here):
        theirs = layer_of(target)
        if theirs is None or theirs == own or theirs in BELOW[own]:
            continue
        wrong.append(f"{path.relative_to(REPO)}:{line}: {own} imports {target} ({theirs})")
    return wrong


def test_every_import_runs_downwards() -> None:
    wrong = [v for path in sources() for v in violations(path)]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "source", "bad"),
    [
        ("adapters/x.py", "from gateway.services.outbox import Outbox\n", True),
        ("monitoring/x.py", "import adapters.rtsp.client\n", True),
        ("gateway/services/x.py", "from gateway.faces import web\n", True),
        ("gateway/services/x.py", "from simulators.broker import Broker\n", True),
        ("gateway/domain/x.py", "from monitoring.uptime import WINDOWS\n", True),
        ("gateway/services/x.py", "from gateway import faces\n", True),
        ("gateway/faces/x.py", "from gateway.services.status import GatewayStatus\n", False),
        ("gateway/app.py", "from simulators.broker import Broker\n", False),
        ("center/x.py", "from gateway.app import create_app\n", True),
    ],
)
def test_the_check_catches_an_upward_import(tmp_path: Path, module: str, source: str, bad: bool) -> None:
    path = REPO / module
    tree = ast.parse(source)
    here = module_name(path)
    own = layer_of(here)
    assert own is not None
    found = [t for _, t in imported(tree, here) if (layer_of(t) not in (None, own)) and layer_of(t) not in BELOW[own]]
    assert bool(found) is bad
