"""Training memory, measured: what autograd keeps for backward, per layer, and the peak.

An estimate sums layer outputs; what training really holds is the tensors autograd saves
for the backward pass. One forward in train mode runs under
``torch.autograd.graph.saved_tensors_hooks``: every saved tensor's storage is counted once
(views and re-saves of one storage add nothing; parameters are not activations and are
left out) and charged to the innermost module running when it was saved. On CUDA the
allocator's peak over forward + backward is read too. The model comes back as it was:
training flags, parameters, buffers (BatchNorm statistics) and ``.grad``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class MemoryMeasurement:
    saved_bytes: dict[str, int]  # module name ("" for the model itself) -> bytes it saved
    total_saved_bytes: int
    peak_bytes: int | None  # allocator peak over forward + backward (CUDA), else None


def measure_training_memory(
    model: nn.Module, inputs: list[torch.Tensor], allocator: Any = None
) -> MemoryMeasurement:
    """One training step's forward with every saved tensor counted; with an ``allocator``
    (``torch.cuda`` on CUDA: ``synchronize``, ``reset_peak_memory_stats``,
    ``max_memory_allocated``) its backward too, for the allocator's peak."""
    import torch

    from vizcli.hooks import first_tensor, preserved_state

    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()
    saved: dict[str, int] = {}
    stack: list[str] = [""]
    names = {id(m): n for n, m in model.named_modules()}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key and key not in seen and key not in parameters:
            seen.add(key)
            saved[stack[-1]] = saved.get(stack[-1], 0) + storage.nbytes()
        return tensor

    def enter(module: nn.Module, args: object) -> None:
        stack.append(names[id(module)])

    def leave(module: nn.Module, args: object, output: object) -> None:
        stack.pop()

    device = inputs[0].device
    if allocator is None and device.type == "cuda":
        allocator = torch.cuda
    handles = []
    with preserved_state(model):  # flags, buffers (BatchNorm statistics), grads restored
        for module in model.modules():
            if module is not model:
                handles.append(module.register_forward_pre_hook(enter))
                handles.append(module.register_forward_hook(leave))
        try:
            model.train()
            if allocator is not None:
                allocator.synchronize(device)
                allocator.reset_peak_memory_stats(device)
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                output = first_tensor(model(*inputs))
            peak = None
            if allocator is not None:  # the backward only matters for the allocator's peak
                if output is not None and output.requires_grad:
                    trainable = [p for p in model.parameters() if p.requires_grad]
                    torch.autograd.grad(output.float().sum(), trainable, allow_unused=True)
                del output
                allocator.synchronize(device)
                peak = allocator.max_memory_allocated(device)
        finally:
            for handle in handles:
                handle.remove()
    return MemoryMeasurement(saved, sum(saved.values()), peak)
