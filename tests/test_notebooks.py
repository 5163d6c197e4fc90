"""The chapter notebooks as stored: parameterizable by papermill, without outputs, all in the book."""

import ast
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHARED_PARAMETERS = {"dataset", "data_root", "profile", "results_dir", "device", "seed"}


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def code_cells(path: Path) -> list[dict]:
    return [c for c in cells(path) if c["cell_type"] == "code"]


def parameters(path: Path) -> dict:
    """The first code cell's assignments, as values (it must hold literals only)."""
    tree = ast.parse("".join(code_cells(path)[0]["source"]))
    out = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign), f"{path.name}: the parameters cell may only assign values"
        for target in node.targets:
            out[target.id] = ast.literal_eval(node.value)
    return out


def toc_files(toc: dict) -> list[str]:
    found = []
    for value in toc.values() if isinstance(toc, dict) else toc:
        if isinstance(value, (dict, list)):
            found += toc_files(value)
    if isinstance(toc, dict) and "file" in toc:
        found.append(toc["file"])
    return found


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 6, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_parameters_cell(path):
    cells = code_cells(path)
    assert "parameters" in cells[0].get("metadata", {}).get("tags", []), f"{path.name}: first code cell not tagged"
    assert not any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells[1:]), "two parameters cells"
    values = parameters(path)
    assert SHARED_PARAMETERS <= set(values), f"{path.name} lacks {SHARED_PARAMETERS - set(values)}"
    assert values["profile"] == "paper" and values["results_dir"] == "results" and values["data_root"] is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    for cell in code_cells(path):
        assert cell["outputs"] == [], f"{path.name} has stored outputs"
        assert cell["execution_count"] is None, f"{path.name} has execution counts"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_has_its_own_id(path):
    """nbformat 4.5 requires cell ids; a cell pasted in without one makes every build warn (and, in a
    future nbformat, fail)."""
    ids = [c.get("id") for c in cells(path)]
    assert None not in ids, f"{path.name}: cell {ids.index(None)} has no id"
    assert len(set(ids)) == len(ids), f"{path.name}: repeated cell ids"


def test_every_chapter_is_in_the_table_of_contents():
    files = toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    stems = {Path(f).name for f in files}
    for path in NOTEBOOKS:
        assert path.stem in stems, f"{path.stem} is not listed in _toc.yml"


def test_the_book_is_built_from_stored_outputs_only():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    for excluded in (".venv", "notebooks", "results", "tests", "_build", ".cache"):
        assert excluded in config["exclude_patterns"]


def test_no_function_is_defined_in_two_chapters():
    """A helper two chapters need lives in eesr_lib, once, not in both notebooks."""
    where: dict[str, list[str]] = {}
    for path in NOTEBOOKS:
        source = "\n".join("".join(c["source"]) for c in code_cells(path))
        names = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        for name in names:
            where.setdefault(name, []).append(path.stem)
    repeated = {name: stems for name, stems in where.items() if len(stems) > 1}
    assert not repeated, f"defined in more than one chapter: {repeated}"


def test_chapter_4_measures_training_noise_with_the_rerun_chapter_8_reads():
    from eesr_lib.tables import RERUN_TAG

    assert parameters(ROOT / "notebooks" / "04_results.ipynb")["rerun_tag"] == RERUN_TAG
