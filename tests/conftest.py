"""Test-wide settings: offline hub, passive OpenMP threads, the repo root on sys.path."""
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """The project's offline data bundle (../shared/data); tests that read it skip without it."""
    from registry.datasets.data_root import default_data_root

    root = default_data_root()
    if not (root / "textlen").is_dir():
        pytest.skip(f"the shared data bundle is not at {root}")
    return root
