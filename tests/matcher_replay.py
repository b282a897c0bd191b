"""FedPrime's matcher loop written out again from methods.md section 3c and prob_matching's docstring,
in float64: torch.distributions for the likelihoods, brute force over permutations for each
client's assignment, the new-centre price from the columns of the clients already matched, and the
merge radius in numpy. tests/test_prob_matching.py compares match_prompts with it."""

import itertools

import numpy as np
import torch
from torch.distributions import Bernoulli, Normal

from fedbench.aggregation import PopularityNet, ScaleNet


def theta2_by_hand(qs):
    """merge_radius's formula written out: S = 10% quantile of nearest same-client squared distances,
    N = lower quartile of nearest other-client ones, theta^2 = (min(N, S/2) + S) / 2."""
    rows = [(t, q.numpy()) for t, qt in enumerate(qs) for q in qt]
    within, across = [], []
    for a, (ta, xa) in enumerate(rows):
        same = [((xa - xb) ** 2).sum() for b, (tb, xb) in enumerate(rows) if b != a and tb == ta]
        other = [((xa - xb) ** 2).sum() for tb, xb in rows if tb != ta]
        within += [min(same)] if same else []
        across += [min(other)] if other else []
    s, n = np.quantile(within, 0.1), np.quantile(across, 0.25)
    return (min(n, s / 2) + s) / 2


def best_columns(cost):
    """Brute force: the distinct columns for the rows of cost [n, m] with maximal total."""
    n, m = cost.shape
    return np.array(max(itertools.permutations(range(m), n), key=lambda cols: cost[range(n), cols].sum()))


def replay(clients, *, outer_loops, hidden, lr, seed, lam=None, cost="joint", standardise=False, auto=False):
    """match_prompts as methods.md section 3c and the module docstring describe it, in float64:
    torch.distributions for the log-likelihoods, brute force for the assignment, a set of the other
    matched clients' columns for the price. Returns (centres, assignments, trace, radius)."""
    qs = [q.double() for q in clients]
    shift = unit = None
    if standardise:
        rows = torch.cat(qs)
        shift = rows.mean(0)
        unit = float(((rows - shift) ** 2).mean().sqrt())
        qs = [(q - shift) / unit for q in qs]
    theta2 = theta2_by_hand(qs) if auto else None
    sizes = [len(q) for q in qs]
    m, d = sum(sizes), qs[0].shape[1]
    rng = np.random.default_rng(seed)  # the seeded random initial one-to-one map
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # fresh nets per call
        scale_net, pop_net = ScaleNet(d, hidden).double(), PopularityNet(d, hidden).double()
    phi = torch.nn.Parameter(torch.cat(qs).clone())  # every local prompt is an initial centre
    opt = torch.optim.Adam([phi, *scale_net.parameters(), *pop_net.parameters()], lr=lr)
    z = [rng.permutation(m)[:n] for n in sizes]
    matched = [False] * len(qs)

    def client_term(q, zt, centres, std, prob):
        idx = torch.as_tensor(zt)
        gauss = Normal(centres[idx], std[idx]).log_prob(q).sum()
        if cost == "official":  # n_t * sum over the assigned columns of log pi
            return gauss + len(q) * torch.log(prob[idx]).sum()
        chosen = torch.zeros(m, dtype=torch.float64)
        chosen[idx] = 1.0
        return gauss + Bernoulli(probs=prob).log_prob(chosen).sum()

    def bonus(std):  # lambda_i = theta^2 / (2 g_i^2), g_i the geometric mean of centre i's stds
        return theta2 / (2 * np.exp(np.log(std.numpy()).mean(1)) ** 2)

    trace = []
    for _ in range(outer_loops):
        for t, q in enumerate(qs):
            std, prob = scale_net(phi), pop_net(phi).squeeze(-1)
            loss = -client_term(q, z[t], phi, std, prob)
            with torch.no_grad():  # the cost matrix from the pre-step values
                c_phi, c_std, c_prob = phi.detach().clone(), std.detach(), prob.detach()
                cost_m = Normal(c_phi[None], c_std[None]).log_prob(q[:, None]).sum(-1).numpy()
                if cost == "official":
                    before = torch.zeros(m, dtype=torch.float64)
                    before[torch.as_tensor(z[t])] = 1.0
                    cost_m = cost_m + len(q) * Bernoulli(probs=c_prob).log_prob(before).numpy()
                else:
                    cost_m = cost_m + np.log(c_prob.numpy()) - np.log1p(-c_prob.numpy())
            others = set()
            for s in range(len(qs)):
                if s != t and matched[s]:
                    others |= set(z[s].tolist())
            in_others = np.array([i in others for i in range(m)])
            if lam is not None:
                cost_m = cost_m - lam * ~in_others
            if auto:
                cost_m = cost_m + bonus(c_std) * in_others
            opt.zero_grad()
            loss.backward()
            opt.step()
            z[t], matched[t] = best_columns(cost_m), True
        with torch.no_grad():
            std, prob = scale_net(phi), pop_net(phi).squeeze(-1)
            total = sum(float(client_term(q, zt, phi, std, prob)) for q, zt in zip(qs, z, strict=True))
            counts = np.bincount(np.concatenate(z), minlength=m)
            if lam is not None:
                total -= lam * int((counts > 0).sum())
            if auto:
                total += float((bonus(std) * np.maximum(counts - 1, 0)).sum())
        trace.append(total)
    kept = sorted(set(np.concatenate(z).tolist()))
    centres = phi.detach()[kept]
    if standardise:
        centres = centres * unit + shift
    assignments = [np.array([kept.index(i) for i in zt]) for zt in z]
    radius = None if theta2 is None else theta2 * (1.0 if unit is None else unit**2)
    return centres, assignments, trace, radius
