"""The pure core must stay importable without Ray (STYLE.md: three layers, one direction), and
only the synthetic world's own modules may read it."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "groundloop"


def imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_groundloop_never_imports_ray():
    offenders = [f"{p.relative_to(CORE.parent)}: {n}" for p in CORE.rglob("*.py") for n in imports(p)
                 if n == "ray" or n.startswith("ray.")]
    assert not offenders, offenders
    assert len(list(CORE.rglob("*.py"))) > 5  # the walk really saw the package


def test_only_the_world_and_its_vocabulary_import_shapesworld():
    allowed = {CORE / "vocab" / "shapes.py"}
    offenders = [f"{p.relative_to(CORE.parent)}: {n}" for p in CORE.rglob("*.py")
                 if CORE / "worlds" not in p.parents and p not in allowed
                 for n in imports(p) if n.startswith("groundloop.worlds")]
    assert not offenders, offenders
