"""Counting mult-adds the same way on every device, dtype and code path.

torch's FLOP counter knows the composite ops a model runs on the meta device, but a real CPU
build takes fused fast paths the counter has no formula for: ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer`` in eval mode (``_native_multi_head_attention``), CPU
scaled-dot-product attention (``_scaled_dot_product_flash_attention_for_cpu``) and oneDNN's
fused LSTM layer (``mkldnn_rnn_layer``). ``aten.lstm``/``gru``/``rnn_*`` themselves never reach
the counter: they decompose into ``addmm``s (GRU, RNN) or the oneDNN layer first.
:func:`counting` turns the MHA fast path off while it counts and adds a formula for each of
the others, so a figure never depends on how the model was built. FLOPs are 2 x mult-adds,
as torch counts them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any


def _sdpa(query: Sequence[int], key: Sequence[int], value: Sequence[int], *args: Any,
          out_shape: Any = None, **kwargs: Any) -> int:  # fmt: skip
    """Attention: scores = Q K^T (Lq x Lk x E per head), then scores V (Lq x Lk x Ev)."""
    *batch, length_q, embed = query
    length_k, embed_v = key[-2], value[-1]
    heads = math.prod(batch)
    return 2 * heads * length_q * length_k * (embed + embed_v)


def _onednn_layer(data: Sequence[int], w_ih: Sequence[int], w_hh: Sequence[int], *args: Any,
                  out_shape: Any = None, **kwargs: Any) -> int:  # fmt: skip
    """oneDNN's one-layer, one-direction LSTM kernel: each weight matrix multiplies one vector
    per time step and sample (biases not counted, as for ``nn.Linear``)."""
    return 2 * math.prod(data[:-1]) * (math.prod(w_ih) + math.prod(w_hh))


def _custom_mapping() -> dict[Any, Any]:
    import torch

    aten = torch.ops.aten
    mapping: dict[Any, Any] = {}
    for name in ("_scaled_dot_product_flash_attention_for_cpu",
                 "_scaled_dot_product_fused_attention_overrideable"):  # fmt: skip
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = _sdpa
    if hasattr(aten, "mkldnn_rnn_layer"):
        mapping[aten.mkldnn_rnn_layer] = _onednn_layer
    return mapping


@contextlib.contextmanager
def counting() -> Iterator[Any]:
    """A ``FlopCounterMode`` that counts fused attention and RNN kernels too."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    mha = torch.backends.mha
    fast = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        with FlopCounterMode(display=False, custom_mapping=_custom_mapping()) as counter:
            yield counter
    finally:
        mha.set_fastpath_enabled(fast)
