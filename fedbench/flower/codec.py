"""What crosses Flower's wire: fedbench's tensors and payloads as Flower records.

Tensors travel in an ``ArrayRecord`` as NumPy arrays keyed by name, in the order of the state
dict they came from (an ``ArrayRecord`` is an ordered dict and Flower keeps that order through
serialisation), so the receiver rebuilds the same ``{name: tensor}`` dict bit for bit.

A method's per-client payload (``Aggregator.configure_fit``) and its round metadata
(``ClientModule.round_metadata``) are free-form: nested dicts and lists of tensors, numbers and
strings (SCAFFOLD's control variates, FedPrime's used prompt indices). They are split into the
tensors (an ``ArrayRecord`` keyed by their path) and a JSON skeleton naming where each tensor
goes (one string in a ``ConfigRecord``); :func:`unpack` puts them back together.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord

State = dict[str, torch.Tensor]

_TENSOR, _DICT, _TUPLE = "__fedbench_tensor__", "__fedbench_dict__", "__fedbench_tuple__"


def _to_numpy(name: str, value: torch.Tensor) -> np.ndarray:
    if value.dtype == torch.bfloat16:  # NumPy has no bfloat16
        raise TypeError(
            f"tensor {name!r} is bfloat16; the Flower adapter sends float32/float16/integer tensors (keep "
            "trainable tensors in fp32)"
        )
    return value.detach().cpu().contiguous().numpy()


def state_to_record(state: State) -> ArrayRecord:
    """A fedbench state dict as an ``ArrayRecord`` (same names, same order)."""
    record = ArrayRecord()
    for name, value in state.items():
        record[name] = Array.from_numpy_ndarray(_to_numpy(name, value))
    return record


def record_to_state(record: ArrayRecord) -> State:
    """The inverse of :func:`state_to_record`: writable CPU tensors in the record's order."""
    return {name: torch.from_numpy(np.array(array.numpy(), copy=True)) for name, array in record.items()}


def pack(value: Any) -> tuple[ConfigRecord, ArrayRecord]:
    """A payload or metadata value as (JSON skeleton, tensors). Dicts with non-string keys and
    tuples keep their kind; NumPy scalars and arrays become Python numbers and tensors."""
    arrays: State = {}

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, torch.Tensor):
            arrays[path] = v
            return {_TENSOR: path}
        if isinstance(v, np.ndarray):
            return walk(torch.from_numpy(v), path)
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, dict):
            if all(isinstance(k, str) for k in v):
                return {k: walk(x, f"{path}/{k}") for k, x in v.items()}
            return {_DICT: [[k, walk(x, f"{path}/{i}")] for i, (k, x) in enumerate(v.items())]}
        if isinstance(v, tuple):
            return {_TUPLE: [walk(x, f"{path}/{i}") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [walk(x, f"{path}/{i}") for i, x in enumerate(v)]
        if v is None or isinstance(v, bool | int | float | str):
            return v
        raise TypeError(
            f"cannot send a {type(v).__name__} at {path or '/'} through Flower (tensors, numbers, strings, "
            "lists and dicts only)"
        )

    skeleton = json.dumps(walk(value, ""))
    return ConfigRecord({"json": skeleton}), state_to_record(arrays)


def unpack(skeleton: ConfigRecord, arrays: ArrayRecord) -> Any:
    """The inverse of :func:`pack`."""
    tensors = record_to_state(arrays)

    def build(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {_TENSOR}:
                return tensors[v[_TENSOR]]
            if set(v) == {_DICT}:
                return {_key(k): build(x) for k, x in v[_DICT]}
            if set(v) == {_TUPLE}:
                return tuple(build(x) for x in v[_TUPLE])
            return {k: build(x) for k, x in v.items()}
        if isinstance(v, list):
            return [build(x) for x in v]
        return v

    return build(json.loads(str(skeleton["json"])))


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k  # a tuple key came back from JSON as a list


def state_bytes(record: ArrayRecord) -> int:
    """Bytes of an ``ArrayRecord`` as Flower counts them (array data plus names)."""
    return int(record.count_bytes())
