"""The built book in a real browser (headless Chromium), as a reader would open it.

Each page (the introduction and every chapter) must load, show its title, hold no Python
traceback, and every image it shows must be an existing, non-empty file; a screenshot of
each page is saved. Skipped unless ``EESR_BOOK_HTML`` names a built book's html folder:

    make book-smoke
    EESR_BOOK_HTML=/tmp/eesr-smoke-book/_build/html pytest tests/test_book.py

Screenshots go to ``$EESR_BOOK_SCREENSHOTS`` (default: a pytest temporary folder).

Every page's article (the intro, the choices, every chapter) is also read as a reader sees it: it shows
no warning, no traceback and no path of the machine that built it, no unfilled ``{{ name }}`` number,
and a page that speaks of the paper cites it or links to a page that does.
"""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = os.environ.get("EESR_BOOK_HTML")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(not HTML, reason="set EESR_BOOK_HTML to a built book's _build/html folder")


def chapter_title(notebook: Path) -> str:
    """The notebook's first '# ' heading: the title the book shows."""
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise AssertionError(f"{notebook.name} has no '# ' title")


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        pytest.fail("no chromium on PATH: apt-get install chromium")
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def pages() -> list[tuple[str, Path | None, str]]:
    """(name, page, expected title): the introduction, then each chapter of each dataset built."""
    html = Path(HTML or ".")
    out = [("intro", html / "book" / "intro.html", "Autoencoder with emotion embedding")]
    for nb in NOTEBOOKS:
        built = sorted(html.glob(f"book/chapters/*/{nb.stem}.html"))
        out += [(f"{p.parent.name}-{nb.stem}", p, chapter_title(nb)) for p in built] or [(nb.stem, None, "")]
    return out


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("EESR_BOOK_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_index_page_exists():
    assert (Path(HTML) / "index.html").is_file()


@pytest.mark.parametrize("name,page,title", pages(), ids=[p[0] for p in pages()])
def test_page_loads_with_its_figures(name, page, title, screenshots, tmp_path):
    assert page is not None, f"chapter {name} has no page in {HTML}"
    assert page.is_file()
    done = chromium(["--dump-dom", "--virtual-time-budget=5000", page.as_uri()], tmp_path / "profile")
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(dom) > 2000, f"{page}: almost empty DOM ({len(dom)} characters)"
    assert title in dom.replace("&amp;", "&"), f"{page}: title {title!r} not in the page"
    assert "Traceback (most recent call last)" not in dom, f"{page} shows a Python traceback"

    parser = Images()
    parser.feed(dom)
    for src in parser.sources:
        assert src, f"{page}: <img> without src"
        if src.startswith("data:"):
            assert len(src) > 100, f"{page}: empty inline image"
            continue
        url = urlparse(src)
        assert url.scheme in ("", "file"), f"{page}: image from the network: {src}"
        target = Path(unquote(url.path)) if url.scheme == "file" else (page.parent / unquote(url.path)).resolve()
        assert target.is_file() and target.stat().st_size > 0, f"{page}: image {src} is missing or empty"

    source = Path(HTML) / "_sources" / page.relative_to(HTML).with_suffix(".ipynb")
    if source.is_file():  # every figure of the executed notebook is in the page
        cells = json.loads(source.read_text())["cells"]
        figures = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
        assert len(parser.sources) >= figures, f"{page}: {len(parser.sources)} images for {figures} figures"

    shot = screenshots / f"{name}.png"
    shot.unlink(missing_ok=True)
    done = chromium([f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()], tmp_path / "profile2")
    assert shot.is_file(), f"no screenshot of {page}: {done.stderr[-2000:]}"
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000, f"{shot}: not a real PNG ({len(data)} bytes)"


ARTICLE = re.compile(r'<article class="bd-article"[^>]*>(.*?)</article>', re.S)
MACHINE_PATHS = ("/work/", "/tmp/", "/root/", "/home/")


def articles() -> list[tuple[str, str]]:
    """(page, the HTML of its article) of every page of the built book but the generated ones."""
    html = Path(HTML or ".")
    pages = sorted(html.glob("book/**/*.html"))
    out = []
    for page in pages:
        found = ARTICLE.search(page.read_text())
        out.append((str(page.relative_to(html)), found.group(1) if found else ""))
    return out


def test_every_page_reads_as_a_report():
    """No warning, traceback, machine path or unfilled number in any article; a page that speaks of the
    paper has a citation (a link to the references) or a cross-reference to another page of the book."""
    found = articles()
    assert len(found) >= 3, f"too few pages under {HTML}/book"
    problems = []
    for name, article in found:
        assert article, f"{name}: no article"
        text = re.sub(r"<[^>]+>", " ", article)
        problems += [f"{name}: shows {word!r}" for word in ("Warning", "Traceback") if word in text]
        problems += [f"{name}: shows the machine path {p!r}" for p in MACHINE_PATHS if p in article]
        problems += [f"{name}: an unfilled substitution {m!r}" for m in re.findall(r"{{[^}]*}}", text)]
        if name.endswith("references.html"):
            continue
        if re.search(r"(?i)the paper|zhang", text):
            links = re.findall(r'<a class="reference internal" href="([^"#]+)', article)
            if not any(link and not link.endswith(Path(name).name) for link in links):
                problems.append(f"{name}: speaks of the paper without a citation or a cross-reference")
    assert not problems, "\n".join(problems)
