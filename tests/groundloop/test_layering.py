"""The layers import in one direction only (STYLE.md): the pure core (`groundloop/`) imports no
Ray and none of the shells; actors and serve import no pipelines; only the synthetic world's own
modules read it from inside the core."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "groundloop"

# layer -> the top-level packages it must never import
FORBIDDEN = {
    "groundloop": ("ray", "actors", "serve", "pipelines", "recipes", "benchmarks", "tests"),
    "actors": ("pipelines", "serve", "recipes", "benchmarks", "tests"),
    "serve": ("pipelines", "recipes", "benchmarks", "tests"),
    "pipelines": ("recipes", "benchmarks", "tests"),
    "recipes": ("actors", "serve", "pipelines", "benchmarks", "tests"),
}


def imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer):
    files = list((ROOT / layer).rglob("*.py"))
    assert len(files) >= 2, f"the walk saw no {layer}/ files"
    offenders = [
        f"{p.relative_to(ROOT)}: {n}" for p in files for n in imports(p) if n.split(".")[0] in FORBIDDEN[layer]
    ]
    assert not offenders, offenders


def test_a_forbidden_import_is_seen(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from pipelines.svp import run\n    import ray.data\n")
    assert {"pipelines.svp", "ray.data"} <= set(imports(bad))


def test_only_the_world_and_its_vocabulary_import_shapesworld():
    allowed = {CORE / "vocab" / "shapes.py"}
    offenders = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in CORE.rglob("*.py")
        if CORE / "worlds" not in p.parents and p not in allowed
        for n in imports(p)
        if n.startswith("groundloop.worlds")
    ]
    assert not offenders, offenders
