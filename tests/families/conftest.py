import pytest

from tests.families import tiny


@pytest.fixture(scope="session")
def family_folders(tmp_path_factory):
    """A built tiny model folder per family, made on first use and kept for the session."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("families")
    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = str(tiny.build(family, root / family))
        return built[family]

    return get


@pytest.fixture(scope="session")
def two_images():
    from PIL import Image

    return [Image.new("RGB", (40, 30), (200, 30, 30)), Image.new("RGB", (24, 48), (30, 200, 30))]
