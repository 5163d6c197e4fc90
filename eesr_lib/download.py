"""Getting EMODB onto a user's machine: the one corpus that may be downloaded freely.

The official ``download.zip`` holds ``wav/`` (535 files), ``lablaut/``, ``labsilb/``,
``silb/``, ``erkennung.txt`` and ``erklaerung.txt`` at its top level; mirrors sometimes
wrap them in one folder. Both are accepted.

The download is all or nothing: the archive is streamed into a temporary file next to the
destination, extracted into a temporary folder there, checked (a ``wav/`` folder with the
expected number of EMODB-named files), and only then renamed to the destination in one
step. Whatever fails, no partial ``emodb/`` folder and no temporary file is left behind,
so a later run never mistakes half a corpus for a whole one.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from .corpora import _EMODB_NAME, corpus_dir, resolve_data_root
from .errors import EESRError

EMODB_URL = "http://emodb.bilderbar.info/download/download.zip"
EMODB_FILES = 535
_CHUNK = 1 << 16
_TMP_PREFIX = ".emodb-download-"


def _local_copy_hint(dest: Path) -> str:
    return (
        "If this machine cannot reach it, copy the corpus from elsewhere (the contents of download.zip: "
        f"a folder emodb/ containing wav/*.wav) and set EESR_DATA (or pass --data-root) to the folder that "
        f"holds emodb/, e.g. `export EESR_DATA=/path/to/data` with /path/to/data/emodb/wav/. "
        f"The download would have gone to {dest}."
    )


def _emodb_wavs(folder: Path) -> list[Path]:
    """The ``.wav`` files of ``folder/wav``; raises if one is not named like an EMODB file."""
    wavs = sorted((folder / "wav").glob("*.wav"))
    for path in wavs:
        if not _EMODB_NAME.match(path.name):
            raise EESRError(f"Not an EMODB file name (expected e.g. 03a01Fa.wav): {path}")
    return wavs


def is_complete(folder: str | Path, expected_files: int | None = EMODB_FILES) -> bool:
    """Whether ``folder`` already holds an EMODB corpus (``wav/`` with ``expected_files`` files)."""
    folder = Path(folder)
    if not (folder / "wav").is_dir():
        return False
    try:
        wavs = _emodb_wavs(folder)
    except EESRError:
        return False
    return len(wavs) == expected_files if expected_files is not None else len(wavs) > 0


def _fetch(url: str, target: Path, dest: Path, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``target``; every network failure becomes one clear EESRError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc="EMODB download",
                disable=not progress,
            ) as bar:
                got = 0  # counted here: a disabled bar counts nothing
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            if total is not None and got != total:
                raise EESRError(
                    f"Download of EMODB from {url} failed: got {got} of {total} bytes. {_local_copy_hint(dest)}"
                )
    except urllib.error.HTTPError as exc:
        raise EESRError(
            f"Download of EMODB from {url} failed: HTTP {exc.code} {exc.reason}. {_local_copy_hint(dest)}"
        ) from exc
    except urllib.error.URLError as exc:
        raise EESRError(f"Download of EMODB from {url} failed: {exc.reason}. {_local_copy_hint(dest)}") from exc
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, truncated bodies
        reason = str(exc) or type(exc).__name__
        raise EESRError(f"Download of EMODB from {url} failed: {reason}. {_local_copy_hint(dest)}") from exc


def _corpus_root(extracted: Path, archive: str) -> Path:
    """The folder holding ``wav/``: the archive's top level, or its single wrapping folder."""
    if (extracted / "wav").is_dir():
        return extracted
    tops = [p for p in extracted.iterdir() if p.name != "__MACOSX" and not p.name.startswith(".")]
    if len(tops) == 1 and (tops[0] / "wav").is_dir():
        return tops[0]
    names = sorted(p.name for p in tops)
    raise EESRError(f"{archive} is not the EMODB archive: no wav/ folder at its top level (found {names})")


def download_emodb(
    dest: str | Path,
    url: str = EMODB_URL,
    progress: bool = True,
    expected_files: int | None = EMODB_FILES,
    timeout: float = 60.0,
) -> Path:
    """Download and unpack EMODB into ``dest`` (normally ``<data_root>/emodb``); return ``dest``.

    Does nothing if ``dest`` already holds a complete corpus. ``expected_files`` is the
    number of wav files the archive must hold (535 for the official one; ``None`` accepts
    any non-zero number, for tests and trimmed mirrors).
    """
    dest = Path(dest).expanduser().absolute()
    if is_complete(dest, expected_files):
        return dest
    if dest.exists():
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()  # an empty folder is as good as none
        else:
            raise EESRError(
                f"{dest} exists but is not a complete EMODB corpus (wav/ with {expected_files or 'some'} "
                "EMODB files); move or delete it and download again, or point EESR_DATA at a complete copy."
            )
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]  # deepest first
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EESRError(f"Cannot create the data folder {dest.parent}: {exc}") from exc
    try:
        return _download_into(dest, url, progress, expected_files, timeout)
    except BaseException:
        for folder in created:  # a failed download leaves no new (empty) data folders either
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _download_into(dest: Path, url: str, progress: bool, expected_files: int | None, timeout: float) -> Path:
    """Fetch, unpack, check and move into place; temporary files are removed whatever happens."""
    fd, zip_name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".zip.part", dir=dest.parent)
    os.close(fd)
    zip_path = Path(zip_name)
    tmp_dir = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=dest.parent))
    archive = f"the archive downloaded from {url}"
    try:
        _fetch(url, zip_path, dest, progress, timeout)
        try:
            with zipfile.ZipFile(zip_path) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise EESRError(f"{archive} is corrupt: member {bad} fails its CRC check")
                zf.extractall(tmp_dir)  # extractall drops absolute paths and '..' components
        except zipfile.BadZipFile as exc:
            raise EESRError(f"{archive} is not a valid zip file ({exc}); the URL may point to the wrong file") from exc
        root = _corpus_root(tmp_dir, archive)
        wavs = sorted((root / "wav").glob("*.wav"))
        odd = [p.name for p in wavs if not _EMODB_NAME.match(p.name)]
        if odd:
            raise EESRError(f"{archive} has wav files not named like EMODB's (e.g. 03a01Fa.wav): {odd[:5]}")
        if expected_files is not None and len(wavs) != expected_files:
            raise EESRError(f"{archive} holds {len(wavs)} wav files in wav/, expected {expected_files}")
        if not wavs:
            raise EESRError(f"{archive} holds no wav files in wav/")
        root.chmod(0o755)  # mkdtemp makes the folder private; the corpus should not be
        try:
            os.rename(root, dest)  # atomic on one file system: dest is complete or absent
        except OSError as exc:
            if is_complete(dest, expected_files):  # another process finished first
                return dest
            raise EESRError(f"Cannot move the unpacked EMODB corpus to {dest}: {exc}") from exc
    finally:
        zip_path.unlink(missing_ok=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return dest


def ensure_emodb(
    data_root: str | Path | None = None,
    url: str = EMODB_URL,
    progress: bool = True,
    expected_files: int | None = EMODB_FILES,
) -> Path:
    """The EMODB folder under the data root, downloading it first only if it is missing.

    The data root is resolved as everywhere else (argument > ``$EESR_DATA`` > ``data/``).
    """
    root = resolve_data_root(data_root)
    try:
        found = corpus_dir("emodb", root)
    except EESRError:
        found = None
    if found is not None and is_complete(found, expected_files):
        return found
    return download_emodb(root / "emodb", url=url, progress=progress, expected_files=expected_files)
