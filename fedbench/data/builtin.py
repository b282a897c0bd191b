"""Importing this module registers every built-in dataset."""

import fedbench.data.captioned  # noqa: F401  (cub200, flowers102)
import fedbench.data.cifar  # noqa: F401  (cifar10, cifar100)
import fedbench.data.emoji  # noqa: F401
import fedbench.data.food101  # noqa: F401
import fedbench.data.hatememes  # noqa: F401
import fedbench.data.mmimdb  # noqa: F401
import fedbench.data.synthetic  # noqa: F401  (scale tests only)
import fedbench.data.tinyimagenet  # noqa: F401
