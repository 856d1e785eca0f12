"""What is inside a pipeline (components, parameter counts, dtype, device, bytes) and what half precision changes.

Example:
    >>> from helpers import load_pipeline, pipeline_components
    >>> pipe = load_pipeline(profile="tiny")
    >>> {c.name: c.class_name for c in pipeline_components(pipe)}["unet"]
    'UNet2DConditionModel'
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Component:
    """One part of a pipeline. Tokenizers and schedulers have no parameters: their dtype and device are None."""

    name: str
    class_name: str
    parameters: int
    dtype: str | None
    device: str | None
    bytes: int

    @property
    def mib(self) -> float:
        return self.bytes / 2**20


def _tensor_bytes(module: torch.nn.Module) -> int:
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def pipeline_components(pipe) -> list[Component]:
    """Every component of ``pipe`` that is present, in the pipeline's order, with its size in memory.

    Example:
        >>> sum(c.parameters for c in pipeline_components(pipe)) > 0
        True
    """
    rows = []
    for name, part in pipe.components.items():
        if part is None:  # e.g. no safety checker in the tiny test model
            continue
        if isinstance(part, torch.nn.Module):
            first = next(part.parameters(), None)
            dtype = None if first is None else str(first.dtype).removeprefix("torch.")
            device = None if first is None else first.device.type
            params = sum(p.numel() for p in part.parameters())
            rows.append(Component(name, type(part).__name__, params, dtype, device, _tensor_bytes(part)))
        else:
            rows.append(Component(name, type(part).__name__, 0, None, None, 0))
    return rows


def components_table(components: list[Component]) -> str:
    """A Markdown table of :func:`pipeline_components`, with a total row.

    Example:
        >>> print(components_table(pipeline_components(pipe)).splitlines()[0])
        | component | class | parameters | dtype | device | MiB |
    """
    lines = ["| component | class | parameters | dtype | device | MiB |", "| --- | --- | ---: | --- | --- | ---: |"]
    for c in components:
        lines.append(
            f"| {c.name} | {c.class_name} | {c.parameters:,} | {c.dtype or '-'} | {c.device or '-'} | {c.mib:,.1f} |"
        )
    total_params = sum(c.parameters for c in components)
    total_mib = sum(c.mib for c in components)
    lines.append(f"| **total** | | {total_params:,} | | | {total_mib:,.1f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class PrecisionCheck:
    """What :func:`half_precision_check` found: the bytes of each copy and how far apart their outputs are."""

    full_bytes: int
    half_bytes: int
    relative_difference: float

    @property
    def memory_ratio(self) -> float:
        """Half-precision bytes over full-precision bytes (0.5 when every weight is a float)."""
        return self.half_bytes / self.full_bytes


def _first_tensor(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    return output[0]  # a ModelOutput or a tuple: the main result comes first


@torch.no_grad()
def half_precision_check(module: torch.nn.Module, *inputs: torch.Tensor) -> PrecisionCheck:
    """Run a float32 copy and a float16 copy of ``module`` on the same inputs; compare their bytes and outputs.

    The module itself is left alone. The relative difference is ``|out16 - out32| / |out32|`` (Euclidean norms).

    Args:
        module: e.g. ``pipe.text_encoder``.
        *inputs: what the module takes, e.g. token ids from ``pipe.tokenizer(prompt, return_tensors="pt")``.

    Example:
        >>> ids = pipe.tokenizer("a cat", return_tensors="pt").input_ids
        >>> check = half_precision_check(pipe.text_encoder, ids)
        >>> round(check.memory_ratio, 2), check.relative_difference < 0.01
        (0.5, True)
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module such as pipe.text_encoder, got module={type(module).__name__}"
        )
    if not inputs:
        raise ValueError("give the module's inputs too, e.g. half_precision_check(pipe.text_encoder, token_ids)")
    device = next(module.parameters()).device
    inputs = tuple(x.to(device) for x in inputs)
    results = {}
    for dtype in (torch.float32, torch.float16):
        twin = copy.deepcopy(module).to(dtype)
        results[dtype] = (_tensor_bytes(twin), _first_tensor(twin(*inputs)).float())
        del twin
    (full_bytes, full), (half_bytes, half) = results[torch.float32], results[torch.float16]
    difference = ((half - full).norm() / full.norm()).item()
    return PrecisionCheck(full_bytes, half_bytes, difference)
