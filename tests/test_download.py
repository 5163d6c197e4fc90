"""EMODB download: served from a local HTTP server, never from the internet.

The archive is built in tmp_path from a few real EMODB files, in the official layout
(``wav/``, ``lablaut/``, ``labsilb/``, ``silb/``, ``erkennung.txt``, ``erklaerung.txt``).
"""

from __future__ import annotations

import http.server
import io
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from eesr_lib.corpora import EMODB_CODES, load_emodb
from eesr_lib.download import download_emodb, ensure_emodb, is_complete
from eesr_lib.errors import EESRError

# One file per emotion, so labels can be checked class by class.
SAMPLE = ("03a01Wa", "03a01Fa", "03a01Nc", "03a02Ta", "03a04Ad", "03a05Aa", "03a02Fc")


class _Server:
    """A local HTTP server with fixed responses that counts the requests it gets."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (name fixed by http.server)
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                # /truncated.zip announces more bytes than it sends, like a dropped connection
                extra = 1000 if self.path == "/truncated.zip" else 0
                self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _official_zip(src_wavs: list[Path], wrap: str | None = None) -> bytes:
    """A zip in the layout of the official download.zip (optionally inside one folder)."""
    prefix = f"{wrap}/" if wrap else ""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for folder in ("wav", "lablaut", "labsilb", "silb"):
            zf.writestr(f"{prefix}{folder}/", "")
        for wav in src_wavs:
            zf.write(wav, f"{prefix}wav/{wav.name}")
            zf.writestr(f"{prefix}lablaut/{wav.stem}.lablaut", "label\n")
        zf.writestr(f"{prefix}erkennung.txt", "Satz\tErkennungsrate\n".encode("latin-1"))
        zf.writestr(f"{prefix}erklaerung.txt", "Erkl\xe4rung\n".encode("latin-1"))
    return buf.getvalue()


@pytest.fixture(scope="module")
def sample_wavs(data_root, tmp_path_factory) -> list[Path]:
    """Copies of a few real EMODB files (copied into tmp, never into the repository)."""
    folder = tmp_path_factory.mktemp("emodb_src")
    out = []
    for stem in SAMPLE:
        out.append(Path(shutil.copy(data_root / "emodb" / "wav" / f"{stem}.wav", folder)))
    return out


@pytest.fixture(scope="module")
def server(sample_wavs):
    srv = _Server(
        {
            "/download.zip": _official_zip(sample_wavs),
            "/wrapped.zip": _official_zip(sample_wavs, wrap="download"),
            "/corrupt.zip": b"PK\x03\x04 this is not really a zip archive" * 50,
            "/nowav.zip": _zip_without_wav(),
            "/truncated.zip": _official_zip(sample_wavs)[:5000],
        }
    )
    yield srv
    srv.close()


def _zip_without_wav() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    return buf.getvalue()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".emodb-download-"))


def test_download_official_layout_loads(server, tmp_path):
    dest = tmp_path / "data" / "emodb"
    out = download_emodb(dest, url=server.url("/download.zip"), progress=False, expected_files=len(SAMPLE))
    assert out == dest
    assert (dest / "erkennung.txt").is_file() and (dest / "lablaut").is_dir()
    corpus = load_emodb(dest)
    assert len(corpus) == len(SAMPLE)
    expected = {stem: EMODB_CODES[stem[5]] for stem in SAMPLE}
    assert dict(zip(corpus.table["id"], corpus.table["label"], strict=True)) == expected
    assert set(corpus.table["speaker"]) == {"03"}
    assert _leftovers(dest.parent) == []
    assert (dest.stat().st_mode & 0o777) == 0o755  # not the private mode of a temp folder

    # A second call finds the complete corpus and makes no request.
    before = len(server.requests)
    assert download_emodb(dest, url=server.url("/download.zip"), expected_files=len(SAMPLE)) == dest
    assert len(server.requests) == before


def test_download_wrapped_layout(server, tmp_path):
    dest = tmp_path / "emodb"
    download_emodb(dest, url=server.url("/wrapped.zip"), progress=False, expected_files=None)
    assert len(load_emodb(dest)) == len(SAMPLE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emodb"]


def test_ensure_emodb_downloads_once(server, tmp_path, monkeypatch):
    monkeypatch.setenv("EESR_DATA", str(tmp_path))
    url = server.url("/download.zip")
    before = len(server.requests)
    assert ensure_emodb(url=url, progress=False, expected_files=len(SAMPLE)) == tmp_path / "emodb"
    assert len(server.requests) == before + 1
    assert ensure_emodb(url=url, progress=False, expected_files=len(SAMPLE)) == tmp_path / "emodb"
    assert len(server.requests) == before + 1
    assert is_complete(tmp_path / "emodb", len(SAMPLE))
    assert not is_complete(tmp_path / "emodb", 535)


def test_refused_connection_explains_local_copy(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/download.zip"
    with pytest.raises(EESRError) as err:  # data folders it had to create are removed again
        download_emodb(tmp_path / "new" / "data" / "emodb", url=url, progress=False)
    msg = str(err.value)
    assert "failed" in msg and url in msg and "EESR_DATA" in msg and "--data-root" in msg
    assert list(tmp_path.iterdir()) == []


def test_timeout_is_a_download_failure(tmp_path):
    with socket.socket() as s:  # listens, never answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/download.zip"
        with pytest.raises(EESRError, match="EESR_DATA"):
            download_emodb(tmp_path / "emodb", url=url, progress=False, timeout=0.3)
    assert list(tmp_path.iterdir()) == []


def test_http_404(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(EESRError, match="404") as err:
        download_emodb(tmp_path / "emodb", url=url, progress=False)
    assert url in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_zip(server, tmp_path):
    url = server.url("/corrupt.zip")
    with pytest.raises(EESRError, match="not a valid zip") as err:
        download_emodb(tmp_path / "emodb", url=url, progress=False)
    assert url in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_truncated_download(server, tmp_path):
    with pytest.raises(EESRError, match="got 5000 of 6000 bytes.*EESR_DATA"):
        download_emodb(tmp_path / "emodb", url=server.url("/truncated.zip"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_archive_without_wav_folder(server, tmp_path):
    with pytest.raises(EESRError, match="no wav/ folder"):
        download_emodb(tmp_path / "emodb", url=server.url("/nowav.zip"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_wrong_file_count_leaves_nothing(server, tmp_path):
    with pytest.raises(EESRError, match=f"holds {len(SAMPLE)} wav files.*expected 535"):
        download_emodb(tmp_path / "emodb", url=server.url("/download.zip"), progress=False)
    assert not (tmp_path / "emodb").exists()
    assert list(tmp_path.iterdir()) == []


def test_incomplete_existing_folder_is_not_overwritten(server, tmp_path):
    dest = tmp_path / "emodb"
    (dest / "wav").mkdir(parents=True)
    (dest / "notes.txt").write_text("mine")
    before = len(server.requests)
    with pytest.raises(EESRError, match="not a complete EMODB corpus"):
        download_emodb(dest, url=server.url("/download.zip"), progress=False, expected_files=len(SAMPLE))
    assert (dest / "notes.txt").read_text() == "mine"
    assert len(server.requests) == before
