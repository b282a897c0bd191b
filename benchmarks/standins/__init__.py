"""Full-size, format-faithful stand-ins of the real datasets fedbench reads, and random-weight
backbones at their real size in a Hugging Face cache layout, for measuring fedbench's data path at
real scale (peak memory, disk, time per sample) on a machine with no internet and no real data.

``make_dataset(name, root, scale=1.0, seed=0)`` writes one dataset's original download layout;
``make_weights(name, hf_home)`` writes one backbone into ``<hf_home>/hub``. Nothing downloads.
CLI: ``python -m benchmarks.standins data ...`` and ``... weights ...`` (see ``__main__``).
"""

from __future__ import annotations


def make_dataset(name, root, scale=1.0, seed=0, overwrite=False):
    from benchmarks.standins.datasets import make_dataset as make

    return make(name, root, scale=scale, seed=seed, overwrite=overwrite)


def make_weights(name, hf_home, config_overrides=None, seed=0):
    from benchmarks.standins.backbones import make_weights as make

    return make(name, hf_home, config_overrides=config_overrides, seed=seed)


__all__ = ["make_dataset", "make_weights"]
