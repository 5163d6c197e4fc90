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
def cli_run_kwargs(monkeypatch):
    """``cli_run_kwargs(argv)``: the keyword arguments ``eesr run ARGV`` passes to eesr_lib.runner.run (which
    is replaced: nothing trains; the report after it is cut short)."""
    from eesr_lib import cli

    def call(argv: list[str]) -> dict:
        seen = {}

        def stop(*args, **kw):  # the run is all we look at: stop before the report
            raise SystemExit(0)

        monkeypatch.setattr("eesr_lib.runner.run", lambda *args, **kw: seen.update(kw) or [])
        monkeypatch.setattr("eesr_lib.report.summary", stop)
        with pytest.raises(SystemExit):
            cli.main(["run", *argv])
        return seen

    return call


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty feature cache for tests that must see a cold extraction."""
    monkeypatch.setenv("EESR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def mini_manifest(emodb, tmp_path_factory) -> Path:
    """A 35-utterance EMODB subset (5 per class, several speakers) as a manifest CSV.

    Small enough to train the real network for an epoch in seconds on 2 cores.
    """
    table = emodb.table
    table = table[table.groupby("label").cumcount() % 7 == 0].groupby("label").head(5)
    path = tmp_path_factory.mktemp("mini") / "emodb_mini.csv"
    table[["id", "path", "label", "speaker"]].to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def mini(mini_manifest):
    from eesr_lib.corpora import EMODB_LABELS, load_manifest

    return load_manifest(mini_manifest, labels=EMODB_LABELS)
