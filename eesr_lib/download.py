"""Getting the freely downloadable corpora onto a user's machine: EMODB and nEMO.

The official ``download.zip`` holds ``wav/`` (535 files), ``lablaut/``, ``labsilb/``,
``silb/``, ``erkennung.txt`` and ``erklaerung.txt`` at its top level; mirrors sometimes
wrap them in one folder. Both are accepted.

The download is all or nothing: the archive is streamed into a temporary file next to the
destination, extracted into a temporary folder there, checked (a ``wav/`` folder with the
expected number of EMODB-named files), and only then renamed to the destination in one
step. Whatever fails, no partial ``emodb/`` folder and no temporary file is left behind,
so a later run never mistakes half a corpus for a whole one.

nEMO (Christop 2024) is published in the GitHub repository ``amu-cai/nEMO`` (``data.tsv`` and
``samples/*.wav``, 24 kHz; the shared copy's SOURCE.txt and the repository's README name it;
the Hugging Face dataset ``amu-cai/nEMO`` holds the same recordings as parquet). We fetch
GitHub's zip of one pinned commit, which wraps the repository in ``nEMO-<commit>/``. GitHub does
not promise the same zip bytes over time, so the check is on the content: the SHA-256 of the
release's checksum listing (``sha256sum data.tsv samples/*``, sorted by path), which also holds
for the same files from a mirror. Same all-or-nothing steps as for EMODB.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from .corpora import _EMODB_NAME, NEMO_EMOTIONS, NEMO_LABELS, corpus_dir, nemo_audio, read_nemo_tsv, resolve_data_root
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


def _fetch(
    url: str, target: Path, dest: Path, progress: bool, timeout: float, name: str = "EMODB", hint: str | None = None
) -> None:
    """Stream ``url`` into ``target``; every network failure becomes one clear EESRError."""
    hint = _local_copy_hint(dest) if hint is None else hint
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"{name} download",
                disable=not progress,
            ) as bar:
                got = 0  # counted here: a disabled bar counts nothing
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            if total is not None and got != total:
                raise EESRError(f"Download of {name} from {url} failed: got {got} of {total} bytes. {hint}")
    except urllib.error.HTTPError as exc:
        raise EESRError(f"Download of {name} from {url} failed: HTTP {exc.code} {exc.reason}. {hint}") from exc
    except urllib.error.URLError as exc:
        raise EESRError(f"Download of {name} from {url} failed: {exc.reason}. {hint}") from exc
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, truncated bodies
        reason = str(exc) or type(exc).__name__
        raise EESRError(f"Download of {name} from {url} failed: {reason}. {hint}") from exc


def _unzip(zip_path: Path, into: Path, archive: str) -> None:
    """Check every member's CRC, then extract (extractall drops absolute paths and '..' components)."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise EESRError(f"{archive} is corrupt: member {bad} fails its CRC check")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise EESRError(f"{archive} is not a valid zip file ({exc}); the URL may point to the wrong file") from exc


def _new_parents(dest: Path) -> list[Path]:
    """Create ``dest``'s parent folders; return those that did not exist (deepest first)."""
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EESRError(f"Cannot create the data folder {dest.parent}: {exc}") from exc
    return created


def _remove_empty(created: list[Path]) -> None:
    """A failed download leaves no new (empty) data folders either."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            break


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
    created = _new_parents(dest)
    try:
        return _download_into(dest, url, progress, expected_files, timeout)
    except BaseException:
        _remove_empty(created)
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
        _unzip(zip_path, tmp_dir, archive)
        root = _corpus_root(tmp_dir, archive)
        wavs = sorted((root / "wav").glob("*.wav"))
        odd = [p.name for p in wavs if not _EMODB_NAME.match(p.name)]
        if odd:
            raise EESRError(f"{archive} has wav files not named like EMODB's (e.g. 03a01Fa.wav): {odd[:5]}")
        if expected_files is not None and len(wavs) != expected_files:
            raise EESRError(f"{archive} holds {len(wavs)} wav files in wav/, expected {expected_files}")
        if not wavs:
            raise EESRError(f"{archive} holds no wav files in wav/")
        if not _move_into_place(root, dest, lambda: is_complete(dest, expected_files), "EMODB"):
            return dest
    finally:
        zip_path.unlink(missing_ok=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return dest


def _move_into_place(root: Path, dest: Path, complete_there, name: str) -> bool:
    """Rename an unpacked corpus folder to ``dest`` in one step, so that ``dest`` is complete or absent.

    Returns False when the rename failed because another process had already put a complete copy
    there (``complete_there()``), which is then kept; any other failure is an error naming ``dest``."""
    root.chmod(0o755)  # mkdtemp makes the folder private; the corpus should not be
    try:
        os.rename(root, dest)  # atomic on one file system
    except OSError as exc:
        if complete_there():
            return False
        raise EESRError(f"Cannot move the unpacked {name} corpus to {dest}: {exc}") from exc
    return True


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


# ---------------------------------------------------------------- nEMO

NEMO_COMMIT = "66de9999a8f2f605eb5f64841790aa5cb0877782"  # amu-cai/nEMO, 2024-05-28: the release
NEMO_URL = f"https://github.com/amu-cai/nEMO/archive/{NEMO_COMMIT}.zip"
NEMO_FILES = 4481  # recordings in data.tsv and samples/ (3076 of them in the four IEMOCAP classes)
# SHA-256 of the sorted `sha256sum` listing of data.tsv and samples/* at NEMO_COMMIT (531,752,942 bytes)
NEMO_SHA256 = "2cf85b68b502afb584ed85ec2941d784fe47f3d5707097a0f00545dbff4348c5"
_NEMO_TMP_PREFIX = ".nemo-download-"


def _nemo_hint(dest: Path) -> str:
    return (
        "If this machine cannot reach it, copy the release from elsewhere (the GitHub repository amu-cai/nEMO: "
        "data.tsv and samples/*.wav) into a folder nemo/ and set EESR_DATA (or pass --data-root) to the folder "
        f"that holds nemo/, or pass --url a mirror of the zip. The download would have gone to {dest}."
    )


def nemo_listing(folder: str | Path) -> str:
    """``sha256sum``'s listing of ``data.tsv`` and every file in ``samples/``, sorted by path."""
    folder = Path(folder)
    files = [folder / "data.tsv"] + sorted(p for p in (folder / "samples").iterdir() if p.is_file())
    lines = []
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        lines.append(f"{digest.hexdigest()}  {path.relative_to(folder).as_posix()}\n")
    return "".join(sorted(lines, key=lambda line: line.split("  ", 1)[1]))


def nemo_is_complete(folder: str | Path, classes: int = 6) -> bool:
    """Whether ``folder`` holds nEMO with ``classes`` (4 or 6) classes: a data.tsv naming all of them,
    and the audio of every row."""
    folder = Path(folder)
    try:
        table = read_nemo_tsv(folder / "data.tsv")
    except EESRError:
        return False
    wanted = NEMO_EMOTIONS if classes == 6 else NEMO_LABELS
    if not set(wanted) <= set(table["emotion"]):
        return False
    return all(nemo_audio(folder, f) is not None for f in table["file_id"])


def download_nemo(
    dest: str | Path,
    url: str = NEMO_URL,
    classes: int = 6,
    progress: bool = True,
    expected_files: int | None = NEMO_FILES,
    sha256: str | None = NEMO_SHA256,
    timeout: float = 60.0,
) -> Path:
    """Download the nEMO release into ``dest`` (normally ``<data_root>/nemo``); return ``dest``.

    ``classes=6`` keeps the whole release (``load_corpus("nemo")`` then reads four classes of it,
    ``"nemo6"`` all six); ``classes=4`` keeps only anger, happiness, neutral, sadness: the other
    recordings are deleted and data.tsv keeps its header and those rows, byte for byte. The whole
    release is checked before that: ``expected_files`` rows, each with its audio, and the content
    digest ``sha256`` (``None`` skips either, for tests and other versions). ``dest`` also gets a
    ``SHA256SUMS`` of what it keeps. Does nothing if ``dest`` already holds nEMO with the classes
    asked for (six include four).
    """
    if classes not in (4, 6):
        raise EESRError(f"nEMO has 6 classes, or the 4 of IEMOCAP's setup: classes must be 4 or 6, not {classes}")
    dest = Path(dest).expanduser().absolute()
    if nemo_is_complete(dest, classes):
        return dest
    if dest.exists():
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        else:
            four = nemo_is_complete(dest, 4)
            raise EESRError(
                f"{dest} exists but "
                + (
                    "holds only nEMO's four IEMOCAP classes, not all six"
                    if four
                    else "is not a complete nEMO corpus (data.tsv and samples/ with the audio of every row)"
                )
                + "; move or delete it and download again, or point EESR_DATA at a complete copy."
            )
    created = _new_parents(dest)
    try:
        return _download_nemo_into(dest, url, classes, progress, expected_files, sha256, timeout)
    except BaseException:
        _remove_empty(created)
        raise


def _nemo_root(extracted: Path, archive: str) -> Path:
    """The folder holding ``data.tsv``: the archive's top level or its one wrapping folder (GitHub's)."""
    if (extracted / "data.tsv").is_file():
        return extracted
    tops = [p for p in extracted.iterdir() if p.name != "__MACOSX" and not p.name.startswith(".")]
    if len(tops) == 1 and (tops[0] / "data.tsv").is_file():
        return tops[0]
    raise EESRError(
        f"{archive} is not the nEMO release: no data.tsv at its top level (found {sorted(p.name for p in tops)})"
    )


def _download_nemo_into(
    dest: Path, url: str, classes: int, progress: bool, expected_files: int | None, sha256: str | None, timeout: float
) -> Path:
    fd, zip_name = tempfile.mkstemp(prefix=_NEMO_TMP_PREFIX, suffix=".zip.part", dir=dest.parent)
    os.close(fd)
    zip_path = Path(zip_name)
    tmp_dir = Path(tempfile.mkdtemp(prefix=_NEMO_TMP_PREFIX, dir=dest.parent))
    archive = f"the archive downloaded from {url}"
    try:
        _fetch(url, zip_path, dest, progress, timeout, name="nEMO", hint=_nemo_hint(dest))
        _unzip(zip_path, tmp_dir, archive)
        zip_path.unlink()  # half a gigabyte: not kept beside the extracted copy
        root = _nemo_root(tmp_dir, archive)
        try:
            table = read_nemo_tsv(root / "data.tsv")
        except EESRError as exc:
            raise EESRError(f"{archive}: {exc}") from exc
        if not (root / "samples").is_dir():
            raise EESRError(f"{archive} is not the nEMO release: no samples/ folder next to data.tsv")
        missing = [f for f in table["file_id"] if not (root / "samples" / f).is_file()]
        if missing:
            raise EESRError(
                f"{archive}: data.tsv names {len(missing)} file(s) missing from samples/, e.g. {missing[:3]}"
            )
        if expected_files is not None and len(table) != expected_files:
            raise EESRError(f"{archive} lists {len(table)} recordings in data.tsv, expected {expected_files}")
        listing = nemo_listing(root)
        if sha256 is not None:
            got = hashlib.sha256(listing.encode()).hexdigest()
            if got != sha256:
                raise EESRError(
                    f"{archive} does not hold the expected nEMO release: the SHA-256 of its data.tsv and samples/ "
                    f"is {got}, expected {sha256}"
                )
        if classes == 4:
            _keep_four(root, table)
            listing = nemo_listing(root)
        (root / "SHA256SUMS").write_text(listing)
        if not _move_into_place(root, dest, lambda: nemo_is_complete(dest, classes), "nEMO"):
            return dest
    finally:
        zip_path.unlink(missing_ok=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return dest


def _keep_four(root: Path, table) -> None:
    """Delete the recordings of fear and surprised; data.tsv keeps its header and the other rows unchanged."""
    for file_id in table.loc[~table["emotion"].isin(NEMO_LABELS), "file_id"]:
        (root / "samples" / file_id).unlink()
    lines = (root / "data.tsv").read_bytes().splitlines(keepends=True)
    kept = set(table.loc[table["emotion"].isin(NEMO_LABELS), "file_id"])
    rows = [line for line in lines[1:] if line.split(b"\t", 1)[0].decode("utf-8").strip() in kept]
    (root / "data.tsv").write_bytes(b"".join([lines[0], *rows]))
