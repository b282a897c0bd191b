"""The server ignores its clients: FedAvg's aggregate returns the global state unchanged."""

from fedbench.methods.fedavg import FedAvgAggregator

FedAvgAggregator.aggregate = lambda self, global_state, updates, round_index, seed: dict(global_state)
