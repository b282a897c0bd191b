"""Every built-in method still computes what tests/fingerprints.json says its version computes
(tests/fingerprints.py: what a fingerprint is, the tolerance and how it was measured). A change of
behaviour must come with a bump of ``MethodSpec.version`` (which changes the run identity, so old
records are not reused) and new records for the boards the method feeds."""

from __future__ import annotations

import pytest
from fingerprints import builtin_methods, differences, fingerprint, load

from fedbench.methods.registry import METHODS

STORED = load()


def test_every_builtin_method_has_a_fingerprint():
    missing = sorted(set(builtin_methods()) - set(STORED))
    assert not missing, (
        f"no fingerprint for {', '.join(missing)}: "
        f"run python tests/fingerprints.py --write {' '.join(missing)}"
    )


@pytest.mark.parametrize("method", sorted(STORED))
def test_behaviour_matches_the_fingerprint_of_its_version(method, tmp_path):
    if method not in METHODS:
        pytest.fail(
            f"tests/fingerprints.json has {method}, which is not registered: "
            "remove it (python tests/fingerprints.py --write)"
        )
    stored, version = STORED[method], METHODS.get(method).version
    if stored["version"] != version:
        pytest.fail(
            f"{method} is at version {version} but "
            f"tests/fingerprints.json holds version {stored['version']}: "
            f"run python tests/fingerprints.py --write {method} and rerun the boards it feeds"
        )
    moved = differences(stored, fingerprint(method, tmp_path))
    assert not moved, (
        f"{method} computes something else than version {version} did ({'; '.join(moved)}): "
        "bump its MethodSpec.version, rerun the boards it feeds (make bench METHOD=...), "
        f"then python tests/fingerprints.py --write {method}"
    )
