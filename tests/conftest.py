"""Shared fixtures: the real corpora in ../shared/data (or $EESR_DATA) and a private cache."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EESR_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (SHARED_DATA / "emodb" / "wav").is_dir():
        pytest.fail(f"Real corpora not found at {SHARED_DATA}: set EESR_DATA to the shared data folder")
    return SHARED_DATA


@pytest.fixture(scope="session")
def emodb(data_root):
    from eesr_lib.corpora import load_corpus

    return load_corpus("emodb", data_root)


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty feature cache for tests that must see a cold extraction."""
    monkeypatch.setenv("EESR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
