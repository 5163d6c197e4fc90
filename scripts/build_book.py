"""Build the book: run every chapter notebook through papermill, then ``jupyter-book build``.

    python scripts/build_book.py                          # EMODB, profile "paper" (make book)
    python scripts/build_book.py --dataset ravdess         # another corpus, next to EMODB's chapters
    python scripts/build_book.py --profile smoke           # tiny and fast, in a throw-away tree (make book-smoke)

Profile "paper": the notebooks in ``notebooks/`` run with the given parameters, and the
executed copies are written to ``book/chapters/<dataset>/``; results are read from (and, only
if a chapter is asked to, written to) ``--results`` (default ``results/``). ``_toc.yml``
lists the chapters of every dataset present in ``book/chapters/``. For EMODB the introduction's
figure is redrawn and the numbers ``book/intro.md`` and ``book/choices.md`` quote are written into
their front matter from the results (``eesr_lib.findings``). Then ``jupyter-book build .`` writes
``_build/html``.

Profile "smoke": nothing in the project is written. ``_config.yml`` and ``book/`` (without
its executed chapters) are copied to ``--smoke-dir`` (default ``/tmp/eesr-smoke-book``,
emptied first); the chapters run there with results in ``<smoke-dir>/results`` and the
HTML goes to ``<smoke-dir>/_build/html``. The pages' links to chapters the smoke build does not
run (another corpus's part) become plain text there, and the build is strict: any Sphinx
warning (a broken cross-reference, a missing figure) fails it, so CI catches them.

A failing cell stops the build with exit status 1; papermill has then saved the executed
notebook, error included, where the chapter would have gone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SMOKE_DIR = Path("/tmp/eesr-smoke-book")
CAPTIONS = {"emodb": "EMODB", "ravdess": "RAVDESS", "iemocap": "IEMOCAP", "nemo": "nEMO (standing in for IEMOCAP)"}


def dataset_key(dataset: str) -> str:
    """Folder name of a dataset's chapters: the corpus name, or a manifest's file stem."""
    return Path(dataset).stem if dataset.endswith(".csv") else dataset


def ensure_corpus(dataset: str, data_root: str | None) -> None:
    """Download EMODB first if it is the dataset asked for and it is missing (skipped if impossible)."""
    if dataset != "emodb":
        return
    from eesr_lib.corpora import corpus_dir
    from eesr_lib.errors import EESRError

    try:
        corpus_dir("emodb", data_root)
        return
    except EESRError:
        pass
    try:
        from eesr_lib.download import ensure_emodb
    except ImportError:
        print("build_book: EMODB not found and eesr_lib.download is not available; continuing", file=sys.stderr)
        return
    print("build_book: EMODB not found; downloading it", flush=True)
    ensure_emodb(data_root)


def chapter_applies(notebook: Path, dataset: str) -> bool:
    """Whether a chapter belongs in ``dataset``'s part: a notebook whose metadata names its datasets
    (``"eesr": {"datasets": [...]}``, e.g. chapter 9, about the EMODB model committed with the project)
    is left out of the others; every other chapter runs on any corpus."""
    datasets = json.loads(notebook.read_text()).get("metadata", {}).get("eesr", {}).get("datasets")
    return datasets is None or dataset in datasets


def toc_text(book_root: Path, chapters: list[str]) -> str:
    """``_toc.yml``: the introduction, one part per dataset present, then the reference pages."""
    present = sorted(
        (d.name for d in (book_root / "book" / "chapters").glob("*") if d.is_dir()),
        key=lambda name: (name != "emodb", name),
    )
    lines = [
        "# Written by scripts/build_book.py: one part per dataset in book/chapters/.",
        "format: jb-book",
        "root: book/intro",
        "parts:",
    ]
    for name in present:
        files = [c for c in chapters if (book_root / "book" / "chapters" / name / f"{c}.ipynb").exists()]
        if not files:
            continue
        lines += [f"  - caption: Chapters on {CAPTIONS.get(name, name)}", "    chapters:"]
        lines += [f"      - file: book/chapters/{name}/{c}" for c in files]
    lines += ["  - caption: Reference", "    chapters:", "      - file: book/choices", "      - file: book/references"]
    return "\n".join(lines) + "\n"


def claims_figure(book_root: Path, results: str, data_root: str | None) -> None:
    """The introduction's figure (every claim against ours) from the EMODB results, into
    ``book/figures/claims.png``; left as it is where no claim has finished runs (the smoke profile)."""
    from eesr_lib.corpora import load_corpus
    from eesr_lib.figures import write_claims_figure

    speakers = load_corpus("emodb", data_root).table.set_index("id")["speaker"]
    out = write_claims_figure(results, "emodb", speakers, book_root / "book" / "figures" / "claims.png")
    print(f"build_book: {'wrote ' + str(out.relative_to(book_root)) if out else 'no claim to draw: figure kept'}")


def page_numbers(book_root: Path, results: str, data_root: str | None) -> None:
    """The numbers ``book/intro.md`` and ``book/choices.md`` quote (``{{ name }}``), computed from the
    results (``eesr_lib.findings``) and written into the pages' front matter."""
    from eesr_lib.book import write_substitutions
    from eesr_lib.findings import page_numbers as compute

    values = compute(results, data_root)
    for page in ("intro.md", "choices.md"):
        if write_substitutions(book_root / "book" / page, values):
            print(f"build_book: wrote the numbers of book/{page}")


def smoke_tree(target: Path) -> Path:
    """A fresh copy of the book's sources (no executed chapters) in ``target``."""
    target = target.expanduser().resolve()
    if (target == ROOT or ROOT in target.parents) and ROOT / "_build" not in target.parents:
        raise SystemExit(f"build_book: the smoke folder must be outside the project (or under _build/): {target}")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(ROOT / "_config.yml", target / "_config.yml")
    shutil.copytree(ROOT / "book", target / "book", ignore=shutil.ignore_patterns("chapters", "_build"))
    return target


CHAPTER_LINK = re.compile(r"\[([^\]]+)\]\((chapters/[^)\s]+\.ipynb)\)")


def unlink_unbuilt(book_dir: Path) -> list[str]:
    """Turn each link of ``book_dir``'s pages to a chapter that is not there into its plain text.

    Why: a smoke build runs one corpus's chapters, while the introduction and the choices page also
    link to the others' (the RAVDESS verdict); unlinked, the strict smoke build still fails on a link
    that is broken in the real book. Returns the targets unlinked."""
    gone: list[str] = []

    def keep_or_unlink(match: re.Match) -> str:
        if (book_dir / match.group(2)).exists():
            return match.group(0)
        gone.append(match.group(2))
        return match.group(1)

    for page in sorted(book_dir.glob("*.md")):
        text = page.read_text()
        new = CHAPTER_LINK.sub(keep_or_unlink, text)
        if new != text:
            page.write_text(new)
    return gone


def execute(notebook: Path, output: Path, parameters: dict, cwd: Path = ROOT) -> float:
    """Run one notebook with papermill in ``cwd``; returns its wall time. Raises on a failing cell."""
    import papermill as pm

    t0 = time.time()
    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        kernel_name="python3",  # the venv's kernel: jupyter runs "python" as this interpreter
        cwd=str(cwd),
        progress_bar=False,
        start_timeout=300,
    )
    hide_injected_parameters(output)
    return time.time() - t0


def hide_injected_parameters(output: Path) -> None:
    """Keep papermill's injected-parameters cell off the page: the chapter's parameters cell shows
    the defaults a reader can change, and its setup table the values this build used."""
    import nbformat

    nb = nbformat.read(output, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, output)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="emodb")
    p.add_argument("--data-root", default=None)
    p.add_argument("--profile", default="paper", choices=["paper", "smoke"])
    p.add_argument("--results", default="results", help="results folder for profile paper (default: results)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke-dir", default=str(SMOKE_DIR), help="where profile smoke builds (emptied first)")
    p.add_argument("--chapters", default=None, help="comma-separated notebook names to run (default: all)")
    p.add_argument("--no-html", action="store_true", help="run the notebooks only")
    args = p.parse_args(argv)

    t_start = time.time()
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not notebooks:
        print(f"build_book: no notebooks in {NOTEBOOKS}", file=sys.stderr)
        return 1
    names = [nb.stem for nb in notebooks]
    if args.chapters:
        wanted = [c.strip() for c in args.chapters.split(",") if c.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"build_book: unknown chapter(s) {unknown}; known: {names}", file=sys.stderr)
            return 1
        notebooks = [nb for nb in notebooks if nb.stem in wanted]

    skipped = [nb.stem for nb in notebooks if not chapter_applies(nb, dataset_key(args.dataset))]
    if skipped:
        print(f"build_book: {', '.join(skipped)}: not a chapter on {args.dataset} (its metadata eesr.datasets)")
        notebooks = [nb for nb in notebooks if nb.stem not in skipped]

    from eesr_lib.errors import EESRError

    try:
        ensure_corpus(args.dataset, args.data_root)
    except EESRError as exc:
        print(f"build_book: {exc}", file=sys.stderr)
        return 1
    if args.profile == "smoke":
        book_root = smoke_tree(Path(args.smoke_dir))
        results = "results"  # relative to the smoke folder the chapters run in: no machine path on a page
    else:
        book_root = ROOT
        results = args.results
    out_dir = book_root / "book" / "chapters" / dataset_key(args.dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = {
        "dataset": args.dataset,
        "data_root": args.data_root,
        "profile": args.profile,
        "results_dir": results,
        "device": args.device,
        "seed": args.seed,
    }
    print(f"build_book: {len(notebooks)} chapter(s), parameters {parameters}", flush=True)
    from papermill.exceptions import PapermillExecutionError

    for nb in notebooks:
        target = out_dir / nb.name
        try:
            seconds = execute(nb, target, parameters, cwd=book_root)
        except PapermillExecutionError as exc:
            print(
                f"build_book: chapter {nb.stem} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                f"build_book: the executed notebook, with the error, is {target}",
                file=sys.stderr,
            )
            return 1
        print(f"build_book: {nb.stem} done in {seconds:.0f} s -> {target.relative_to(book_root)}", flush=True)

    if dataset_key(args.dataset) == "emodb":
        where = str(book_root / results)  # the chapters ran in book_root
        claims_figure(book_root, where, args.data_root)
        if args.profile == "paper":  # the smoke profile keeps the numbers written from the real results
            page_numbers(book_root, where, args.data_root)
    toc = toc_text(book_root, names)
    toc_path = book_root / "_toc.yml"
    if not toc_path.exists() or toc_path.read_text() != toc:
        toc_path.write_text(toc)
        print(f"build_book: wrote {toc_path}")
    if args.no_html:
        print(f"build_book: notebooks done in {time.time() - t_start:.0f} s (no HTML asked for)")
        return 0

    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(book_root)]
    if args.profile == "smoke":
        gone = unlink_unbuilt(book_root / "book")
        if gone:
            print(f"build_book: kept as text, links to chapters not run here: {', '.join(sorted(set(gone)))}")
        cmd += ["-W", "--keep-going"]  # warnings fail the smoke build (CI)
    print("build_book: " + " ".join(cmd), flush=True)
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    done = subprocess.run(cmd, cwd=book_root, env=env)
    if done.returncode != 0:
        print("build_book: jupyter-book build failed", file=sys.stderr)
        return done.returncode
    html = book_root / "_build" / "html"
    if not (html / "index.html").exists():
        print(f"build_book: {html / 'index.html'} is missing after the build", file=sys.stderr)
        return 1
    print(f"build_book: book in {html} (total {time.time() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
