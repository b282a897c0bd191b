"""Importing this module registers every built-in backbone."""

import fedbench.backbones.minilm_effnet  # noqa: F401
