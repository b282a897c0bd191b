"""Importing this module registers every built-in backbone."""

import fedbench.backbones.clip  # noqa: F401
import fedbench.backbones.minilm_effnet  # noqa: F401
import fedbench.backbones.synthetic  # noqa: F401  (scale tests only)
import fedbench.backbones.tv_vit  # noqa: F401
import fedbench.backbones.vilt  # noqa: F401
import fedbench.backbones.vit  # noqa: F401
