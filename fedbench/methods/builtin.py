"""Importing this module registers every built-in method."""

import fedbench.methods.centralized  # noqa: F401
import fedbench.methods.cyclic  # noqa: F401
import fedbench.methods.fedavg  # noqa: F401
import fedbench.methods.fedmsplit  # noqa: F401
import fedbench.methods.fedmvp  # noqa: F401
import fedbench.methods.fedprime  # noqa: F401
import fedbench.methods.fedprox  # noqa: F401
import fedbench.methods.local  # noqa: F401
import fedbench.methods.pfedpg  # noqa: F401
import fedbench.methods.ppt  # noqa: F401
import fedbench.methods.prompt_baselines  # noqa: F401
