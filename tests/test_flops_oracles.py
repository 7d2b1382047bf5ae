"""Mult-adds of recurrent and attention kernels against counts on paper, on the meta device
and on real CPU builds (fused kernels), packed sequences included."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from vizcli.flops import counting

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections")


def recurrent_on_paper(rnn: nn.RNNBase, steps_times_batch: int) -> int:
    """Every weight matrix (input, hidden, projection; each layer and direction) multiplies one
    vector per time step and sample; biases are not counted, as for ``nn.Linear``."""
    matrices = [p for name, p in rnn.named_parameters() if name.startswith("weight_")]
    return steps_times_batch * sum(p.numel() for p in matrices)


def counted_mult_adds(module: nn.Module, *args) -> int:
    with counting() as counter, torch.no_grad():
        module(*args)
    return counter.get_total_flops() // 2


RECURRENT = [
    lambda: nn.LSTM(10, 20),
    lambda: nn.LSTM(10, 20, num_layers=2, bidirectional=True),
    lambda: nn.LSTM(10, 20, proj_size=7),
    lambda: nn.GRU(10, 20, num_layers=2, bidirectional=True),
    lambda: nn.RNN(10, 20, nonlinearity="relu"),
    lambda: nn.RNN(10, 20, num_layers=3),
]


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("build", RECURRENT, ids=["lstm", "lstm2bi", "lstmproj", "gru2bi", "relu",
                                                  "tanh3"])  # fmt: skip
def test_recurrent_layers_match_a_count_on_paper(build, device):
    torch.manual_seed(0)
    rnn = build().to(device)
    steps, batch = 5, 3
    assert counted_mult_adds(rnn, torch.randn(steps, batch, 10, device=device)) == (
        recurrent_on_paper(rnn, steps * batch)
    )


@pytest.mark.parametrize("build", RECURRENT[:1] + RECURRENT[3:5], ids=["lstm", "gru2bi", "relu"])
def test_packed_sequences_count_only_the_real_steps(build):
    torch.manual_seed(0)
    rnn = build()
    lengths = [5, 3, 2]
    packed = pack_padded_sequence(torch.randn(5, 3, 10), lengths)
    assert counted_mult_adds(rnn, packed) == recurrent_on_paper(rnn, sum(lengths))


def test_batch_first_counts_the_same():
    torch.manual_seed(0)
    rnn = nn.GRU(10, 20, batch_first=True)
    assert counted_mult_adds(rnn, torch.randn(3, 5, 10)) == recurrent_on_paper(rnn, 15)


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize(("q", "k", "v"), [((2, 4, 16, 8), (2, 4, 32, 8), (2, 4, 32, 12)),
                                           ((3, 9, 5), (3, 7, 5), (3, 7, 5))])  # fmt: skip
def test_attention_matches_a_count_on_paper(device, q, k, v):
    """Q K^T: Lq x Lk x E per head; scores V: Lq x Lk x Ev per head."""
    query, key, value = (torch.randn(s, device=device) for s in (q, k, v))
    with counting() as counter:
        nn.functional.scaled_dot_product_attention(query, key, value)
    heads = math.prod(q[:-2])
    assert counter.get_total_flops() // 2 == heads * q[-2] * k[-2] * (q[-1] + v[-1])


def test_multihead_attention_in_eval_mode_counts_its_projections_and_attention():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    x = torch.randn(2, 10, 16)
    projections = 2 * 10 * (3 * 16 * 16 + 16 * 16)  # q, k, v in; out
    attention = 2 * 4 * 10 * 10 * (4 + 4)  # per sample and head, head dim 4
    assert counted_mult_adds(lambda t: mha(t, t, t), x) == projections + attention


def test_the_fast_path_setting_comes_back_even_on_error():
    before = torch.backends.mha.get_fastpath_enabled()
    with pytest.raises(RuntimeError, match="boom"), counting():
        assert torch.backends.mha.get_fastpath_enabled() is False
        raise RuntimeError("boom")
    assert torch.backends.mha.get_fastpath_enabled() is before
