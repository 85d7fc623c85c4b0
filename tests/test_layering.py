"""The relay's intended layering, as a test (README: Architecture).

Each package sits in a layer and imports only from its own layer or those below:

    foundation  relay/*.py (config, errors, models, tokens, catalogue, inputs, ...),
                relay/attachments/ (what a file is, images made safe, blobs, uploads)
    sites       relay/sites/         a site's settings and hours
    store       relay/store/         the database: engines and the statements of each concern
    core        relay/conversations/ the one write path, who is told, live fan-out;
                relay/answers/       the owner's answers, found for what visitors write
    channels    relay/channels/      email and the messaging apps: inbound, deliveries;
                relay/push/          Web Push, a channel that only delivers
    web         relay/web/           the HTTP and socket edges: visitor API, owner API, inbox
    entry       relay/app.py, relay/cli/, relay/demo/, relay/__main__.py

Every import counts, also those made inside a function or only for type checking: a
function-level import is how a circle hides. And no circle may join modules at all.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

RELAY = Path(__file__).resolve().parent.parent / "relay"
LAYERS = ["foundation", "sites", "store", "core", "channels", "web", "entry"]
PACKAGE_LAYERS = {
    "attachments": "foundation",
    "sites": "sites",
    "store": "store",
    "migrations": "store",
    "conversations": "core",
    "answers": "core",
    "push": "channels",
    "channels": "channels",
    "web": "web",
    "cli": "entry",
    "demo": "entry",
}
ENTRY_MODULES = {"relay.app", "relay.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(RELAY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    if module in ENTRY_MODULES:
        return "entry"
    parts = module.split(".")
    return PACKAGE_LAYERS.get(parts[1], "foundation") if len(parts) > 1 else "foundation"


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(RELAY.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported relay module, line) for every import in the file, wherever it is."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's package
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            # `from relay.web import api` imports the module relay.web.api
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for name in names:
            if name == "relay" or name.startswith("relay."):
                yield name, node.lineno


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {
        module: {
            target
            for target, _ in imports_of(path, known)
            if target != module and target in known and target != "relay"
        }
        for module, path in found.items()
    }


def test_every_module_sits_in_a_known_layer() -> None:
    top_packages = {p.name for p in RELAY.iterdir() if (p / "__init__.py").exists()}
    assert top_packages <= set(PACKAGE_LAYERS) | {"_bundled"}, (
        f"new package(s) {top_packages - set(PACKAGE_LAYERS)}: give each a layer here "
        "and in README.md's Architecture"
    )


def test_no_module_imports_a_layer_above_its_own() -> None:
    found = modules()
    known = set(found)
    upward = []
    for module, path in found.items():
        mine = LAYERS.index(layer_of(module))
        for target, line in imports_of(path, known):
            if LAYERS.index(layer_of(target)) > mine:
                upward.append(
                    f"{path.relative_to(RELAY.parent)}:{line}: {layer_of(module)} module "
                    f"{module} imports {target} ({layer_of(target)})"
                )
    assert not upward, "\n".join(upward)


def test_no_import_circle() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert not circles, "\n".join(" -> ".join(circle) for circle in circles)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # A core module reaching for the web: the layering check must name it.
        ("from relay.web.services import Services\n", "imports relay.web.services (web)"),
        # The same, hidden in a function (how the old circle through app.py hid).
        ("def f():\n    from relay.cli.common import load_config\n", "relay.cli.common (entry)"),
        ("from relay.channels.email import EmailChannel\n", "(channels)"),
    ],
)
def test_the_check_catches_an_upward_import(
    source: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "relay"
    (fake / "conversations").mkdir(parents=True)
    for package in ("web", "cli", "channels", "channels/email"):
        (fake / package).mkdir(parents=True, exist_ok=True)
        (fake / package / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "cli" / "common.py").write_text("")
    (fake / "web" / "services.py").write_text("")
    (fake / "conversations" / "__init__.py").write_text("")
    (fake / "conversations" / "core.py").write_text(source)
    monkeypatch.setattr(__import__(__name__, fromlist=["RELAY"]), "RELAY", fake)
    with pytest.raises(AssertionError) as failed:
        test_no_module_imports_a_layer_above_its_own()
    assert expected in str(failed.value)


def test_the_check_catches_a_circle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "relay"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "a.py").write_text("from relay import b\n")
    (fake / "b.py").write_text("def later():\n    from relay.a import x\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["RELAY"]), "RELAY", fake)
    with pytest.raises(AssertionError, match=r"relay\.a -> relay\.b -> relay\.a"):
        test_no_import_circle()
