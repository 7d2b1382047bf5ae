"""The layering of docs/ARCHITECTURE.md, checked on the source: imports (function-level ones
too) run one way, cli -> report/output -> computations -> draw/models/images/hooks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vizcli"

# each layer and what it may import besides itself
LAYERS = {
    "cli": {"report", "output", "core", "base"},
    "report": {"core", "base"},
    "output": {"base"},
    "core": {"base"},
    "base": set(),
}
CORE = {"summary", "flops", "memory", "kernels", "fmaps", "hist", "stats", "tensorstats",
        "graph", "cam", "actmax", "diff", "check", "check_images"}  # fmt: skip


def layer_of(module: str) -> str:
    """``vizcli.cam.explain`` -> "core"; ``vizcli.draw.grids`` -> "base"..."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in ("cli", "__main__"):
        return "cli"
    if top in ("report", "output"):
        return top
    return "core" if top in CORE else "base"


def imports(path: Path) -> list[tuple[int, str]]:
    """Every vizcli module ``path`` imports, at any depth (function-level imports too)."""
    module = "vizcli." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(module.split(".")[: -node.level] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names]
            found += [(node.lineno, base if base.count(".") >= 2 else n) for n in names]
    return [(line, name) for line, name in found if name.startswith("vizcli.")]


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    own = layer_of("vizcli." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    against = [
        f"line {line}: {name} ({layer_of(name)})"
        for line, name in imports(path)
        if layer_of(name) != own and layer_of(name) not in LAYERS[own]
    ]
    assert not against, f"a {own} module imports against the layering: {against}"


def test_the_layer_map_knows_every_package():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in SOURCES}
    known = CORE | {"cli", "report", "output", "__main__", "__init__", "draw", "models",
                    "images", "hooks", "layers", "layout", "labels", "limits", "errors",
                    "artifacts", "interrupts", "units"}  # fmt: skip
    assert tops <= known, f"place these in a layer: {sorted(tops - known)}"
