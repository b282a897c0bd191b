"""The apps ``flwr run`` loads: name them in a Flower app's ``pyproject.toml``::

    [tool.flwr.app.components]
    serverapp = "fedbench.flower.apps:serverapp"
    clientapp = "fedbench.flower.apps:clientapp"

    [tool.flwr.app.config]
    config = "experiments/emoji_quick.yaml"   # a fedbench experiment YAML

Both read the fedbench config from the run config's ``config`` key (``seed`` and ``rounds`` keys,
when present, override the file's); see ``docs/flower.md``.
"""

from __future__ import annotations

from fedbench.flower import client_app, server_app

serverapp = server_app()
clientapp = client_app()
