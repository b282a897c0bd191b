"""A loss changed without a version bump: FedProx's proximal term counts twice."""

from fedbench.methods import fedprox

_loss = fedprox.ProximalAnchor.loss


def _doubled(self, module, mu):
    out = _loss(self, module, mu)
    return None if out is None else 2 * out


fedprox.ProximalAnchor.loss = _doubled
