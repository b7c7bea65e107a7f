"""The pure core must stay importable without Ray (STYLE.md: three layers, one direction)."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "groundloop"


def test_groundloop_never_imports_ray():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(CORE.parent)}: {n}" for n in names
                          if n == "ray" or n.startswith("ray.")]
    assert not offenders, offenders
    assert len(list(CORE.rglob("*.py"))) > 5  # the walk really saw the package
