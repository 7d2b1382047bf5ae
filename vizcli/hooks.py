"""Hook capture as context managers that always clean up after themselves.

Every hook vizcli registers goes through :func:`capture` or :func:`intercept`, and every
model run through :func:`preserved_state` (which both use): the model runs in eval mode,
handles are removed, and the model is handed back unchanged (training flags,
``requires_grad``, ``.grad``, parameter memory formats, buffers such as batch-norm running
statistics), on success, on error and on Ctrl-C alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

OutputCallback = Callable[[str, "torch.Tensor"], None]


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode and hand it back exactly as it was, on error too.

    The one guard every vizcli model run goes through (directly or via :func:`capture` and
    :func:`intercept`). Inside, every module is in eval mode, so batch norm uses its running
    statistics instead of moving them. On exit it restores each module's ``training`` flag,
    each parameter's ``requires_grad``, ``.grad`` (set aside inside, so a backward pass there
    cannot accumulate into it) and tensor (so its memory format: a
    channels-last parameter stays channels-last, a contiguous one contiguous) and the value of
    every buffer (batch-norm running statistics and ``num_batches_tracked`` included) that
    changed. Buffers are compared, and copied back only where they differ.
    """
    import torch
    from torch.nn.parameter import UninitializedTensorMixin

    modes = [(m, m.training) for m in model.modules()]
    params = [
        (p, p.requires_grad, p.grad, None if isinstance(p, UninitializedTensorMixin) else p.data)
        for p in model.parameters()
    ]
    buffers = [  # meta and lazy buffers hold no values to restore
        (module, name, buffer, buffer.clone())
        for module in model.modules()
        for name, buffer in module._buffers.items()
        if buffer is not None
        and not buffer.is_meta
        and not isinstance(buffer, UninitializedTensorMixin)
    ]
    for param in model.parameters():  # a backward inside accumulates into fresh tensors
        param.grad = None
    try:
        model.eval()
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
        for param, flag, grad, data in params:
            if data is not None and not _same_tensor(param.data, data):
                param.data = data
            param.requires_grad_(flag)
            if param.grad is not grad:
                param.grad = grad
        with torch.no_grad():
            for module, name, buffer, saved in buffers:
                module._buffers[name] = buffer
                if not torch.equal(buffer, saved):
                    with torch.inference_mode(buffer.is_inference()):
                        buffer.copy_(saved)


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same storage, offset, shape, strides and dtype: the very same view of the data."""
    return (
        a.data_ptr() == b.data_ptr()
        and a.shape == b.shape
        and a.stride() == b.stride()
        and a.dtype == b.dtype
        and a.device == b.device
    )


def model_output(value: Any) -> torch.Tensor:
    """The logits in what a model's forward returned; a clear error when there are none."""
    tensor = first_tensor(value)
    if tensor is None:
        from vizcli.errors import ModelRunError

        raise ModelRunError(
            f"the model's forward returned {type(value).__name__}, with no tensor in it",
            hint="vizcli needs the forward to return the class scores (a tensor, or a "
            "tuple/dict holding one)",
        )
    if tensor.dim() < 2:
        from vizcli.errors import ModelRunError

        raise ModelRunError(
            f"the model's forward returned a tensor of shape {tuple(tensor.shape)}; "
            "vizcli needs batch × classes scores"
        )
    return tensor


def first_tensor(value: Any) -> torch.Tensor | None:
    """The tensor a layer produced: itself, or the first tensor in a tuple/list/dict output."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list | tuple):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


@contextlib.contextmanager
def capture(
    model: nn.Module,
    layers: Mapping[str, nn.Module],
    on_output: OutputCallback,
    tensors_only: bool = True,
) -> Iterator[None]:
    """Call ``on_output(name, tensor)`` as each chosen layer produces its output.

    The callback runs inside the forward pass, before later (possibly in-place) layers touch
    the tensor, so it can render or reduce the map and let it go: nothing is hoarded.
    With ``tensors_only=False`` it also runs (with ``None``) for outputs holding no tensor.
    """

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            tensor = first_tensor(output)
            if tensor is not None or not tensors_only:
                on_output(name, tensor)  # type: ignore[arg-type]

        return hook

    with _forward_hooks(model, layers, make_hook):
        yield


@contextlib.contextmanager
def intercept(
    model: nn.Module, modules: Mapping[str, nn.Module], replace: Callable[[str, Any], Any]
) -> Iterator[None]:
    """While active, each module's output is replaced by ``replace(name, output)``.

    Used where a method must change what flows on (a differentiable leaf at the CAM layer,
    guided-backprop ReLUs, an ablated channel). Same guarantees as :func:`capture`.
    """

    def make_hook(name: str) -> Callable[..., Any]:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            return replace(name, output)

        return hook

    with _forward_hooks(model, modules, make_hook):
        yield


@contextlib.contextmanager
def _forward_hooks(
    model: nn.Module, modules: Mapping[str, nn.Module], make_hook: Callable[[str], Any]
) -> Iterator[None]:
    """Register ``make_hook(name)`` on each module; always remove them and restore the model."""
    handles = []
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        with preserved_state(model):
            yield
    finally:
        for handle in handles:
            handle.remove()


class _Reached(Exception):
    """Raised by the hook of :func:`run_until` to end a forward pass early, with the output."""

    def __init__(self, output: Any) -> None:
        super().__init__("layer reached")
        self.output = output


@contextlib.contextmanager
def run_until(
    model: nn.Module, name: str, module: nn.Module
) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """Inside, ``forward(x)`` runs the model only until ``module`` returns, and hands back its
    output (its first tensor): the layers after it are never computed.

    An optimisation that looks at one layer saves the rest of the forward and all of its
    backward. The module's first call in a pass counts. Same guarantees as :func:`capture`.
    """
    from vizcli.errors import ModelRunError

    def stop(name: str, output: Any) -> Any:
        raise _Reached(output)

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        try:
            model(inputs)
        except _Reached as reached:
            tensor = first_tensor(reached.output)
            if tensor is None:
                raise ModelRunError(f"layer {name!r} outputs no tensor") from None
            return tensor
        raise ModelRunError(f"layer {name!r} did not run in the model's forward")

    with intercept(model, {name: module}, stop):
        yield forward
