"""The board loses a method: every fedavg row is removed from the rendered leaderboard."""

from fedbench.tracking import leaderboard

_render = leaderboard.render_leaderboard


def _without_fedavg(*args, **kwargs):
    return "\n".join(
        line for line in _render(*args, **kwargs).splitlines() if not line.startswith("| fedavg ")
    )


leaderboard.render_leaderboard = _without_fedavg
