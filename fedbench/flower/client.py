"""A fedbench method's local training as a Flower ``ClientApp``.

Each Flower node is one fedbench client: its ``partition-id`` (``node_config``, set by Flower's
simulation engine or by ``flower-supernode --node-config "partition-id=3 num-partitions=10"``)
is the fedbench client id, and the node computes its own rows and missing-modality codes from
the run's config and seed (``fedbench.federation.setup.prepare``), so no data crosses the wire.

A ``train`` message carries the round's global shared state, the aggregator's payload for this
client, and the round's seed and learning rate. The node turns it into a
:class:`~fedbench.federation.client.ClientTask` and runs fedbench's own
:class:`~fedbench.federation.client.ClientRunner` (one lean Lightning fit), so a Flower client
computes exactly what the round loop's executor computes for the same task. The client's
personal tensors (``ClientModule.personal_names``) stay on the node, in ``context.state`` (kept
by Flower for the node across the rounds of a run); only the shared tensors, the sample count,
the loss and the method's round metadata are sent back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedbench.config import ExperimentConfig
from fedbench.errors import ConfigError
from fedbench.flower import codec

PERSONAL_KEY = "fedbench.personal"  # in context.state: this client's personal tensors


@dataclass
class _ClientSide:
    """What a node builds once per process and run: data rows, runner, initial personal state."""

    clients: list[np.ndarray]
    client_codes: list[np.ndarray]
    runner: Any  # fedbench.federation.client.ClientRunner
    initial_personal: dict[str, torch.Tensor]


_BUILT: dict[
    str, _ClientSide
] = {}  # one per config in this process (Flower rebuilds the ClientApp per message)


def _client_side(cfg: ExperimentConfig, specs: tuple | None) -> _ClientSide:
    from fedbench.federation.executors import ray_support as rs
    from fedbench.federation.parts import client_runner
    from fedbench.flower.config import checked

    if specs is not None:  # the driver's dataset, backbone and method (e.g. a test's plugins)
        rs.register_specs(specs)
    run = checked(
        cfg
    )  # resolved in this process (Flower rebuilds the ClientApp per message: the parts are kept below)
    key = run.run_id
    if key not in _BUILT:
        from fedbench.federation.setup import prepare

        if run.cfg.train.threads:
            torch.set_num_threads(run.cfg.train.threads)
        runner = client_runner(run)  # the module made as the round loop makes it (same seeded init)
        _, personal = runner.module.split_state(runner.module.trainable_state())
        exp = prepare(run)
        _BUILT[key] = _ClientSide(
            exp.clients, exp.client_codes, runner, {k: v.cpu() for k, v in personal.items()}
        )
    return _BUILT[key]


def _partition_id(context: Context) -> int:
    pid = context.node_config.get("partition-id")
    if pid is None:
        raise ConfigError(
            'the Flower node has no partition-id; start it with --node-config "partition-id=K '
            'num-partitions=N" (K = the fedbench client id)'
        )
    return int(pid)


def train_message(cfg: ExperimentConfig, specs: tuple | None, msg: Message, context: Context) -> Message:
    """One client fit: ``msg`` from :class:`fedbench.flower.server.FedbenchStrategy` in, the update out."""
    from fedbench.federation.client import ClientTask

    side = _client_side(cfg, specs)
    cid = _partition_id(context)
    fit = msg.content["fit"]
    if int(fit["client-id"]) != cid:
        raise ConfigError(f"the server sent client {fit['client-id']}'s task to the node of client {cid}")
    if not 0 <= cid < len(side.clients):
        raise ConfigError(f"partition-id {cid} is outside the run's {len(side.clients)} clients")
    personal = (
        codec.record_to_state(context.state[PERSONAL_KEY])
        if PERSONAL_KEY in context.state
        else side.initial_personal
    )
    payload = codec.unpack(msg.content["payload"], msg.content["payload-arrays"])
    task = ClientTask(
        round_index=int(fit["round"]),
        client_id=cid,
        global_state=codec.record_to_state(msg.content["global"]),
        personal=personal,
        index=side.clients[cid],
        codes=side.client_codes[cid],
        seed=int(fit["seed"]),
        lr=float(fit["lr"]),
        payload=payload,
        work=float(fit["work"]),
    )
    result = side.runner.run(task)
    if result.personal:
        context.state[PERSONAL_KEY] = codec.state_to_record(result.personal)  # stays on this node
    meta, meta_arrays = codec.pack(result.meta)
    content = RecordDict(
        {
            "state": codec.state_to_record(result.state),
            "metrics": MetricRecord(
                {"num-examples": int(result.n_samples), "loss": float(result.loss), "client-id": cid}
            ),
            "meta": meta,
            "meta-arrays": meta_arrays,
        }
    )
    return Message(content=content, reply_to=msg)


def query_message(msg: Message, context: Context) -> Message:
    """Which fedbench client this node is (the server maps client ids to Flower node ids)."""
    return Message(
        content=RecordDict({"client": ConfigRecord({"client-id": _partition_id(context)})}), reply_to=msg
    )


def client_app(cfg: ExperimentConfig | None = None, *, ship_specs: bool = True) -> ClientApp:
    """A ``ClientApp`` training ``cfg``'s method on this node's client.

    ``cfg=None`` reads the config from the run config's ``config`` key (a fedbench YAML file, as
    under ``flwr run``). ``ship_specs`` sends this process's dataset, backbone and method specs
    along (for Flower's simulation engine, whose workers are fresh processes that would not know
    a plugin registered only here).
    """
    from fedbench.flower.config import checked, config_of, specs_for

    if cfg is not None:
        cfg = checked(
            cfg
        ).cfg  # resolved here as config_of does for flwr run: train.precision auto becomes concrete
    specs = specs_for(cfg) if cfg is not None and ship_specs else None
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return train_message(cfg or config_of(context.run_config), specs, msg, context)

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        return query_message(msg, context)

    return app
