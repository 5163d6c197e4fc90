"""What every result file records about how it was made: code revision, versions, hardware."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

import torch

from .corpora import PROJECT_ROOT

_PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "librosa", "opensmile", "pandas", "soundfile")


def git_revision() -> str:
    """``HEAD``'s hash, with ``+dirty`` when the working tree has uncommitted changes.

    ``$EESR_GIT_REVISION``, when set, wins: on a copy of the tree sent to another machine (a
    rented GPU), the ``.git`` found there need not be the one the code came from. One such
    copy recorded a stale ``HEAD`` in 80 EMODB fold files; set the variable to the commit sent.
    """
    if os.environ.get("EESR_GIT_REVISION"):
        return os.environ["EESR_GIT_REVISION"]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware(device: torch.device | str = "cpu") -> dict:
    info = {
        "machine": platform.machine(),
        "processor": platform.processor() or cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def provenance(device: torch.device | str = "cpu") -> dict:
    return {"git_revision": git_revision(), "versions": library_versions(), "hardware": hardware(device)}
