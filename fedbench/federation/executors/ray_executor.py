"""``executor: {name: ray}``: a round's client tasks on long-lived Ray actors.

One actor per GPU (or per ``cpus_per_actor`` CPU cores where there is no GPU, which is how the
tests run it), each with its own frozen backbone, data and client module, built once when the run
starts. Tasks go to whichever actor is free, the largest first, so clients of different sizes
keep every actor busy; results come back in task order and ``on_result`` sees each as it lands.
Only trainable tensors travel: the round's global state goes into Ray's object store once per
round, each task carries its own client's state, and each result its updated tensors.

A task's result is a pure function of the task (see :mod:`fedbench.federation.client`), so this
executor gives the numbers of the sequential one: bit for bit on CPU with the same torch threads.
``address`` attaches to a running cluster (``ray start --head`` on one node, ``ray start
--address=HEAD:6379`` on the others); without it a local Ray starts and stops with the run.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from fedbench.errors import ConfigError, FedbenchError
from fedbench.federation.executors import (
    EXECUTORS,
    ClientResult,
    ClientTask,
    Executor,
    ExecutorSpec,
    OnResult,
)
from fedbench.federation.executors import ray_support as rs


class _ClientActor:
    """Lives in a Ray worker for the whole run; wrapped with ``ray.remote`` when the executor starts."""

    def __init__(self, cfg, specs, threads: int, rebuild):
        rs.worker_setup(specs, threads)
        self.runner = rebuild(
            cfg
        )  # the driver's way of making a runner from a config (fedbench.federation.parts)

    def ready(self) -> bool:
        return True

    def run(self, task: ClientTask, global_state) -> ClientResult:
        task.global_state = global_state  # resolved from the object store by Ray, once per actor and round
        return self.runner.run(task)


class RayExecutor(Executor):
    def __init__(self, options: rs.RayOptions, cfg, rebuild):
        self.ray = rs.import_ray()
        self.started = rs.connect(options.address)
        self.actors: list = []
        try:
            cpus, gpus, threads = rs.resources(self.ray, options, cfg)
            n = options.actors or rs.capacity(self.ray, cpus, gpus)
            n = max(1, min(n, _clients_per_round(cfg)))
            if options.actors and options.actors > rs.capacity(self.ray, cpus, gpus):
                raise ConfigError(
                    f"executor.options.actors: {options.actors} actors of {cpus:g} CPU / {gpus:g} GPU do not "
                    f"fit the Ray cluster ({self._cluster()}); ask for fewer actors or add nodes"
                )
            remote = self.ray.remote(num_cpus=cpus, num_gpus=gpus)(_ClientActor)
            specs = rs.specs_of(cfg)
            self.actors = [remote.remote(cfg, specs, threads, rebuild) for _ in range(n)]
            try:
                self.ray.get(
                    [a.ready.remote() for a in self.actors]
                )  # surface a failed build here, not in round 1
            except Exception as err:
                raise rs.unwrap(self.ray, err) from None
            self.layout = {"actors": n, "cpus_per_actor": cpus, "gpus_per_actor": gpus, "threads": threads}
        except BaseException:
            self.close()
            raise

    def _cluster(self) -> str:
        res = self.ray.cluster_resources()
        return f"{res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs"

    def run(self, tasks: list[ClientTask], on_result: OnResult | None = None) -> list[ClientResult]:
        ray = self.ray
        results: list[ClientResult | None] = [None] * len(tasks)
        stored: dict[int, object] = {}  # id(global state) -> its object ref (one put per distinct state)
        # the largest clients first: with dynamic assignment that shortens the round (results do not
        # depend on it)
        queue = deque(sorted(range(len(tasks)), key=lambda i: -len(tasks[i].index) * tasks[i].work))
        free = deque(self.actors)
        in_flight: dict = {}
        while queue or in_flight:
            while queue and free:
                i = queue.popleft()
                task, actor = tasks[i], free.popleft()
                key = id(task.global_state)
                if key not in stored:
                    stored[key] = ray.put(task.global_state)
                light = dataclasses.replace(task, global_state={})
                in_flight[actor.run.remote(light, stored[key])] = (i, actor)
            (done,), _ = ray.wait(list(in_flight), num_returns=1)
            i, actor = in_flight.pop(done)
            results[i] = self._get(done, tasks[i])
            free.append(actor)
            if on_result is not None:
                on_result(results[i])
        return results  # type: ignore[return-value]

    def _get(self, ref, task: ClientTask) -> ClientResult:
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as err:
            raise FedbenchError(
                f"ray executor: the actor running client {task.client_id} in round {task.round_index + 1} "
                f"died ({type(err).__name__}: out of memory or a lost node?); run the same command again to "
                "resume from the last round"
            ) from None
        except ray.exceptions.RayTaskError as err:
            raise rs.unwrap(ray, err) from None

    def close(self) -> None:
        ray = self.ray
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:  # already gone
                pass
        self.actors = []
        if self.started and ray.is_initialized():
            ray.shutdown()
        self.started = False


def _clients_per_round(cfg) -> int:
    f, n = cfg.federation, cfg.partition.n_clients
    return min(n, f.clients_per_round or max(1, round(f.client_fraction * n)))


def _build(options, cfg, runner) -> RayExecutor:
    if runner.rebuild is None:
        raise ConfigError(
            "executor.name: ray needs a client runner that says how a worker rebuilds it "
            "(fedbench.federation.parts.client_runner makes one)"
        )
    return RayExecutor(options or rs.RayOptions(), cfg, runner.rebuild)


EXECUTORS.register(
    ExecutorSpec(
        "ray",
        _build,
        rs.RayOptions,
        "client tasks on long-lived Ray actors (one per GPU, or per cpus_per_actor CPUs); address attaches "
        "to a cluster",
    )
)
