"""Seconds per call of the probabilistic prompt matcher at FedPrime-like sizes. Run on demand:

    .venv/bin/python benchmarks/matcher_speed.py

Pinned to one thread (the matcher's matrices are small; extra threads only contend).
"""

import time

import torch

from fedbench.aggregation.prob_matching import match_prompts

torch.set_num_threads(1)
for clients, prompts, dim in [(5, 20, 384), (10, 20, 384), (20, 20, 768)]:
    local = torch.randn(clients, prompts, dim, generator=torch.Generator().manual_seed(0))
    match_prompts(local[:, :2, :8], outer_loops=1)  # warm-up
    for cost, price in [("joint", None), ("joint", 2.0 * dim), ("official", None), ("joint", "auto")]:
        t = time.perf_counter()
        result = match_prompts(local, outer_loops=5, new_cluster_cost=price, cost=cost)
        print(
            f"T={clients:2d} n={prompts} d={dim}: {time.perf_counter() - t:6.2f} s, "
            f"{len(result.centres)} centres (cost={cost}, new_cluster_cost={price})"
        )
