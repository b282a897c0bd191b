"""A fedbench method's Aggregator as a Flower ``Strategy``, and the ``ServerApp`` that runs it.

:class:`FedbenchStrategy` does on Flower's grid what fedbench's round loop does with its
executor: sample the round's clients with the run's seed tree (``sample_clients``), ask the
aggregator for each client's payload (``configure_fit``), send each sampled client's node one
``train`` message, and turn the replies, in client-id order, into the next global shared state
with the aggregator's own ``aggregate``. The global state lives here, as the loop's does; Flower
gets a copy as the round's ``ArrayRecord``.

Flower's node ids are opaque, so before the first round the strategy asks every node which
fedbench client it is (a ``query`` message answered from its ``partition-id``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from fedbench.config import ExperimentConfig
from fedbench.errors import ConfigError, FedbenchError
from fedbench.flower import codec
from fedbench.flower.config import checked, config_of
from fedbench.safe_io import atomic_torch_save

log = logging.getLogger(__name__)

NODE_WAIT_S = 900.0  # default of FedbenchStrategy(node_wait_s=...) and of the run config's node-wait-s


class FedbenchStrategy(Strategy):
    """Flower strategy around ``cfg``'s method. ``global_state``, ``history`` and ``aggregator``
    hold the run's server side as fedbench's loop would (without validation scoring).

    ``node_wait_s`` bounds the wait for every node to connect and to say which client it is (once,
    before round 1). Under simulation a node's Ray actor starts on that first message (it imports
    torch and builds its data), so the wait covers actor start-up, which a loaded machine stretches
    to minutes; it only guards against a node that never comes."""

    def __init__(self, cfg: ExperimentConfig, *, node_wait_s: float = NODE_WAIT_S):
        from fedbench.federation import parts
        from fedbench.federation.setup import prepare

        self.resolved = checked(cfg)  # resolved once (a resolved run is taken as is)
        self.cfg, self.spec = self.resolved.cfg, self.resolved.method
        exp = prepare(self.resolved)
        module = parts.client_runner(self.resolved).module  # same seeded initialisation as the loop's module
        shared, _ = module.split_state(module.trainable_state())
        self.global_state: dict[str, torch.Tensor] = shared
        self.n_clients = len(exp.clients)
        self.aggregator = parts.aggregator(
            self.resolved, exp.backbone, exp.bundle, self.n_clients, self.resolved.device
        )
        self.history: list[dict[str, Any]] = []
        self.node_wait_s = node_wait_s
        self.nodes: dict[int, int] | None = None  # fedbench client id -> Flower node id
        self._round: dict[str, Any] = {}

    # ----- which node is which client --------------------------------------------------------------
    def find_nodes(self, grid: Grid) -> dict[int, int]:
        if self.nodes is not None:
            return self.nodes
        deadline = time.monotonic() + self.node_wait_s
        while len(ids := list(grid.get_node_ids())) < self.n_clients:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"{len(ids)} Flower nodes connected in {self.node_wait_s:g} s but the run has "
                    f"{self.n_clients} clients; start one node per client"
                )
            time.sleep(0.2)
        asks = [Message(content=RecordDict(), dst_node_id=n, message_type=MessageType.QUERY) for n in ids]
        nodes: dict[int, int] = {}
        for reply in grid.send_and_receive(asks, timeout=self.node_wait_s):
            if reply.has_error():
                raise FedbenchError(f"a Flower node did not say which client it is: {_reason(reply)}")
            cid = int(reply.content["client"]["client-id"])
            if cid in nodes:
                raise ConfigError(f"two Flower nodes have partition-id {cid}; give each node its own")
            nodes[cid] = reply.metadata.src_node_id
        if len(nodes) < len(ids):
            raise ConfigError(
                f"{len(nodes)} of {len(ids)} Flower nodes said which client they are within "
                f"{self.node_wait_s:g} s; on a slow or loaded machine wait longer (node-wait-s in the "
                "run config, or simulate(cfg, node_wait_s=...))"
            )
        self.nodes = nodes
        return nodes

    # ----- Strategy ----------------------------------------------------------------------------------
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        from fedbench.federation.rounds import round_lr, sample_clients
        from fedbench.seeds import derive_seed

        cfg, r = self.cfg, server_round - 1
        nodes = self.find_nodes(grid)
        sampled = sample_clients(cfg, self.n_clients, r)
        payloads = self.aggregator.configure_fit(r, sampled, self.global_state)
        global_record = codec.state_to_record(self.global_state)
        messages, down = [], 0
        for c in sampled:
            if c not in nodes:
                continue
            payload, payload_arrays = codec.pack(payloads.get(c, {}))
            fit = ConfigRecord(
                {
                    "round": r,
                    "client-id": c,
                    "seed": derive_seed(cfg.seed, "fit", r, c),
                    "lr": round_lr(cfg, r),
                    "work": 1.0,
                }
            )
            content = RecordDict(
                {"global": global_record, "fit": fit, "payload": payload, "payload-arrays": payload_arrays}
            )
            messages.append(Message(content=content, dst_node_id=nodes[c], message_type=MessageType.TRAIN))
            down += codec.state_bytes(global_record) + codec.state_bytes(payload_arrays)
        self._round = {
            "sampled": sampled,
            "bytes_down": down,
            "lr": round_lr(cfg, r),
            "unreachable": [c for c in sampled if c not in nodes],
        }
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        from fedbench.methods.base import ClientUpdate
        from fedbench.seeds import derive_seed

        r, updates, up = server_round - 1, [], 0
        for reply in replies:
            if reply.has_error():
                raise FedbenchError(
                    f"a client fit failed under Flower in round {server_round}: {_reason(reply)}"
                )
            m = reply.content["metrics"]
            state = codec.record_to_state(reply.content["state"])
            meta = codec.unpack(reply.content["meta"], reply.content["meta-arrays"])
            updates.append(
                ClientUpdate(
                    client_id=int(m["client-id"]),
                    state=state,
                    n_samples=int(m["num-examples"]),
                    meta=meta,
                    loss=float(m["loss"]),
                )
            )
            up += codec.state_bytes(reply.content["state"]) + codec.state_bytes(reply.content["meta-arrays"])
        updates.sort(key=lambda u: u.client_id)  # the loop's order, so the aggregate's float sums match
        if updates:
            self.global_state = self.aggregator.aggregate(
                self.global_state, updates, r, derive_seed(self.cfg.seed, "aggregation", r)
            )
        loss = float(np.mean([u.loss for u in updates])) if updates else None
        replied = {u.client_id for u in updates}
        sent = [c for c in self._round["sampled"] if c not in self._round["unreachable"]]
        entry = {
            "round": server_round,
            "clients": [u.client_id for u in updates],
            "no_reply": [c for c in sent if c not in replied],  # sent a task, no answer within the timeout
            "train_loss": loss,
            "bytes_up": up,
            **self._round,
            **(self.aggregator.metadata() if updates else {"all_dropped": True}),
        }
        self.history.append(entry)
        metrics = MetricRecord(
            {"clients": len(updates), **({"train_loss": loss} if loss is not None else {})}
        )
        return codec.state_to_record(self.global_state), metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return []  # fedbench scores the global model on its own validation/test splits, not on the clients

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return None

    def summary(self) -> None:
        log.info(
            "fedbench method %s: %d clients, %d rounds",
            self.cfg.method.name,
            self.n_clients,
            self.cfg.federation.rounds,
        )

    # ----- the run's result ------------------------------------------------------------------------
    def run(self, grid: Grid, *, timeout: float = 3600.0) -> None:
        self.start(
            grid,
            initial_arrays=codec.state_to_record(self.global_state),
            num_rounds=self.cfg.federation.rounds,
            timeout=timeout,
        )

    def save(self, path: Path | None = None) -> Path:
        """The final global state, server state and history (``torch.save`` through the one atomic
        writer, :func:`fedbench.safe_io.atomic_torch_save`);
        by default ``<results_dir>/<dataset>/flower/<run id>.pt``."""
        path = (
            path
            or Path(self.cfg.tracking.results_dir)
            / self.cfg.data.dataset
            / "flower"
            / f"{self.resolved.run_id}.pt"
        )
        atomic_torch_save(
            {
                "global_state": self.global_state,
                "server_state": self.aggregator.server_state(),
                "history": self.history,
                "config": self.cfg.to_dict(),
            },
            path,
        )
        return path


def _reason(reply: Message) -> str:
    lines = [ln for ln in str(reply.error.reason).splitlines() if ln.strip()]
    return lines[-1].strip() if lines else f"error code {reply.error.code}"


def server_app(
    cfg: ExperimentConfig | None = None,
    *,
    on_end: Callable[[FedbenchStrategy], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    node_wait_s: float | None = None,
) -> ServerApp:
    """A ``ServerApp`` running ``cfg``'s method for ``cfg.federation.rounds`` rounds, then saving
    the result (:meth:`FedbenchStrategy.save`). ``cfg=None`` reads the run config's ``config`` key;
    ``node_wait_s=None`` its ``node-wait-s`` key (default :data:`NODE_WAIT_S`). With ``on_error``
    a fedbench error is handed to it instead of to Flower, which would only log it."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        wait = node_wait_s or float((context.run_config or {}).get("node-wait-s", NODE_WAIT_S))
        try:
            strategy = FedbenchStrategy(cfg or config_of(context.run_config), node_wait_s=wait)
            strategy.run(grid)
        except FedbenchError as err:
            if on_error is None:
                raise
            on_error(err)
            return
        path = strategy.save()
        log.info("fedbench: final global state in %s", path)
        if on_end is not None:
            on_end(strategy)

    return app
