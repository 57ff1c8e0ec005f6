"""Choosing the tf.distribute strategy, from --strategy or the original's deployment flags.

The original placed ``--num_clones`` model clones on GPUs (or the CPU with
``--clone_on_cpu``) and ran ``--num_replicas`` workers with ``--num_ps_tasks`` parameter
servers, addressed by ``--master`` / ``--task``. tf.distribute replaces all of it:
MirroredStrategy over the GPUs of a machine, MultiWorkerMirroredStrategy over machines
(the cluster comes from TF_CONFIG) with synchronous all-reduce instead of parameter
servers. :func:`plan_strategy` reads the original's flags, says in one line each what
replaces them, and refuses values that contradict the machine.
"""

from __future__ import annotations

import dataclasses
import json
import os

STRATEGIES = ("mirrored", "multi_worker", "tpu", "one_device")


@dataclasses.dataclass(frozen=True)
class Deployment:
    """The original train.py's deployment flags (defaults as the original).

    Attributes:
        num_clones: model clones (GPUs) on this machine.
        clone_on_cpu: put the clones on the CPU.
        num_replicas: worker machines.
        startup_delay_steps: the original delayed worker ``task`` by this many steps each.
        num_ps_tasks: parameter servers.
        task: this worker's index.
        given: the names of the flags given on the command line.
    """

    num_clones: int = 1
    clone_on_cpu: bool = False
    num_replicas: int = 1
    startup_delay_steps: int = 15
    num_ps_tasks: int = 0
    task: int = 0
    given: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class StrategyPlan:
    """What to build: a strategy name, its devices, CPU clones to create, and the lines
    telling the user what replaced the original's flags."""

    strategy: str
    devices: tuple[str, ...] | None = None
    cpu_clones: int = 0
    messages: tuple[str, ...] = ()


def _cluster_size(tf_config: dict) -> int:
    cluster = tf_config.get("cluster", {})
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def plan_strategy(deployment: Deployment, strategy: str, strategy_given: bool, gpus: int,
                  tf_config: dict | None) -> StrategyPlan:
    """The strategy for ``--strategy`` and the original's deployment flags.

    Args:
        deployment: the original's flags.
        strategy: ``--strategy``; ``strategy_given`` when it was on the command line.
        gpus: visible GPUs.
        tf_config: the parsed TF_CONFIG, or None.

    Raises:
        ValueError: a flag asks for what this machine or cluster does not have, or
            contradicts ``--strategy``.
    """
    d, given, messages = deployment, deployment.given, []
    if d.num_clones < 1 or d.num_replicas < 1:
        raise ValueError("--num_clones and --num_replicas must be >= 1.")
    if "num_ps_tasks" in given and d.num_ps_tasks:
        messages.append(f"--num_ps_tasks={d.num_ps_tasks}: parameter servers are replaced by "
                        "synchronous all-reduce between replicas; none are started.")
    if "startup_delay_steps" in given:
        messages.append("--startup_delay_steps: tf.distribute starts all workers together "
                        "(synchronous training), so there is no staggered start.")
    if "task" in given:
        index = (tf_config or {}).get("task", {}).get("index")
        if tf_config is None and d.task != 0:
            raise ValueError(f"--task={d.task} names a worker of a cluster; multi-machine "
                             "training reads the cluster and this worker's index from "
                             "TF_CONFIG, which is not set.")
        if index is not None and index != d.task:
            raise ValueError(f"--task={d.task} contradicts TF_CONFIG's task index {index}.")
        messages.append(f"--task={d.task}: the worker index comes from TF_CONFIG.")

    def chosen(name):
        if strategy_given and strategy != name:
            raise ValueError(f"--strategy={strategy} contradicts the original's deployment "
                             f"flags given, which ask for {name}; give one of them.")
        return name

    if d.num_replicas > 1:
        if tf_config is None:
            raise ValueError(f"--num_replicas={d.num_replicas}: multi-machine training uses "
                             "MultiWorkerMirroredStrategy, which reads the cluster from "
                             "TF_CONFIG (not set).")
        size = _cluster_size(tf_config)
        if size != d.num_replicas:
            raise ValueError(f"--num_replicas={d.num_replicas} but TF_CONFIG's cluster has "
                             f"{size} workers.")
        if d.clone_on_cpu:
            raise ValueError("--clone_on_cpu with --num_replicas > 1 is not supported: "
                             "MultiWorkerMirroredStrategy runs each worker on its own devices.")
        if "num_clones" in given:
            messages.append(f"--num_clones={d.num_clones}: each worker trains on its visible "
                            "GPUs (set CUDA_VISIBLE_DEVICES to choose them).")
        messages.append(f"{d.num_replicas} replicas: using MultiWorkerMirroredStrategy over "
                        "the TF_CONFIG cluster.")
        return StrategyPlan(chosen("multi_worker"), messages=tuple(messages))
    if d.clone_on_cpu:
        messages.append(f"{d.num_clones} clone(s) on the CPU: using MirroredStrategy over "
                        f"{d.num_clones} logical CPU device(s).")
        return StrategyPlan(chosen("mirrored"), cpu_clones=d.num_clones,
                            devices=tuple(f"/cpu:{i}" for i in range(d.num_clones)),
                            messages=tuple(messages))
    if "num_clones" in given:
        if d.num_clones > max(gpus, 1):
            raise ValueError(f"--num_clones={d.num_clones} asks for {d.num_clones} GPUs but "
                             f"{gpus} are visible; use --num_clones={max(gpus, 1)}, or "
                             "--clone_on_cpu to run the clones on the CPU.")
        if gpus == 0:
            messages.append("1 clone: no GPU is visible, training on the CPU.")
            return StrategyPlan(chosen("mirrored"), messages=tuple(messages))
        messages.append(f"{d.num_clones} GPU(s): using MirroredStrategy over GPUs "
                        f"0-{d.num_clones - 1} of the {gpus} visible.")
        return StrategyPlan(chosen("mirrored"),
                            devices=tuple(f"/gpu:{i}" for i in range(d.num_clones)),
                            messages=tuple(messages))
    return StrategyPlan(strategy, messages=tuple(messages))


def read_tf_config() -> dict | None:
    """TF_CONFIG parsed, or None when unset; ValueError when it is not JSON."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error}).") from None


def make_strategy(plan: StrategyPlan, tpu: str | None = None):
    """Builds the planned strategy (CPU clones are made as logical devices first)."""
    import tensorflow as tf

    if plan.cpu_clones > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * plan.cpu_clones)
    name = plan.strategy
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker reads the cluster from TF_CONFIG, which "
                             "is not set.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "one_device":
        device = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    return tf.distribute.MirroredStrategy(list(plan.devices) if plan.devices else None)
