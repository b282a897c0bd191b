"""The Hugging Face hub cache layout (what ``hf download`` leaves under ``$HF_HOME/hub``) and a
check that fedbench finds a model there with nothing but ``HF_HOME`` set:

    models--<org>--<name>/blobs/<sha256 of a weights file, or git's blob sha1 of a small file>
    models--<org>--<name>/snapshots/<commit>/<file> -> ../../blobs/<hash>   (relative links)
    models--<org>--<name>/refs/main                                        (the commit, no newline)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path


def repo_folder(hf_home: str | Path, repo: str) -> Path:
    return Path(hf_home) / "hub" / ("models--" + repo.replace("/", "--"))


def _blob_name(path: Path) -> str:
    """The hub's blob name: sha256 of the content for LFS files (weights, anything of 10 MB or
    more), git's blob sha1 (of ``blob <size>\\0<content>``) for the small text files."""
    size = path.stat().st_size
    if path.suffix in (".safetensors", ".bin") or size >= 10 << 20:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        return digest.hexdigest()
    return hashlib.sha1(b"blob %d\0" % size + path.read_bytes(), usedforsecurity=False).hexdigest()


def to_hub_cache(staging: Path, repo_dir: Path, repo: str) -> Path:
    """Move the files of ``staging`` into ``repo_dir``'s blobs, link them from a snapshot named by a
    commit hash derived from their hashes, and point refs/main at it; returns the snapshot."""
    blobs = {f.name: _blob_name(f) for f in sorted(staging.iterdir()) if f.is_file()}
    commit = hashlib.sha1(
        json.dumps([repo, sorted(blobs.items())]).encode(), usedforsecurity=False
    ).hexdigest()
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        os.replace(staging / name, repo_dir / "blobs" / blob)
        os.symlink(os.path.relpath(repo_dir / "blobs" / blob, snapshot), snapshot / name)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)  # the hub writes it without a newline
    return snapshot


CHECK = """
import sys
from fedbench.backbones.registry import BACKBONES
for kind, repo in zip(sys.argv[1::2], sys.argv[2::2]):
    spec = BACKBONES.get(kind)
    backbone = spec.build(spec.options(model=repo))
    print(repo, type(backbone).__name__, sum(p.numel() for p in backbone.parameters()), flush=True)
"""


def check_load(models: list[tuple[str, str]], hf_home: str | Path, timeout: float = 900) -> list[str]:
    """Load (fedbench backbone, hub id) pairs through fedbench's own builders
    (``BACKBONES.get(kind).build(options(model=repo))``) in one fresh process whose ``HF_HOME`` is
    ``hf_home`` and which is offline (huggingface_hub reads HF_HOME when imported, so only a new
    process sees it). Returns one line per model: repo, backbone class, parameter count; raises
    with the stderr when a load fails."""
    args = [a for kind, repo in models for a in (kind, repo)]
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHECK, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode:
        names = ", ".join(repo for _, repo in models)
        raise RuntimeError(f"fedbench could not load {names} from {hf_home}:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()
