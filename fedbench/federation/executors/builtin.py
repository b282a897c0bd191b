"""Importing this module registers every built-in executor."""

import fedbench.federation.executors.ray_executor  # noqa: F401  (imports Ray only when a run asks for it)
import fedbench.federation.executors.sequential  # noqa: F401
