from __future__ import annotations

from pathlib import Path

import pytest

from registry.datasets.data_root import default_data_root


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """The project's offline data bundle (../shared/data)."""
    root = default_data_root()
    if not (root / "textlen").is_dir():
        pytest.skip(f"the shared data bundle is not at {root}")
    return root
