import json
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shapes_split(tmp_path_factory):
    """`shapes_split(split, n, seed)`: a generated ShapesWorld split folder, made once per session."""
    from groundloop.worlds import shapes

    made: dict[tuple[str, int, int], Path] = {}

    def get(split: str, n: int, seed: int = 0) -> Path:
        key = (split, n, seed)
        if key not in made:
            made[key] = tmp_path_factory.mktemp(f"{split}{n}_{seed}")
            shapes.generate(made[key], split, n, seed=seed)
        return made[key]

    return get


@pytest.fixture
def run_main(monkeypatch):
    """`run_main(module, *args, out=path)`: the benchmark's own main() with that command line;
    returns the JSON it wrote to `out`."""

    def run(module, *args: str, out: Path) -> dict:
        monkeypatch.setattr(sys, "argv", [module.__file__, *map(str, args), "--out", str(out)])
        module.main()
        return json.loads(Path(out).read_text())

    return run
