"""Tests for the attention layers: MultiHeadAttention and TransformerBlock."""

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from zerograd import Variable
from zerograd.cuda import as_numpy
from zerograd.testing import check_backward, check_double_backward


@pytest.fixture(autouse=True)
def _seeded():
    L.seed(0)


def _to_torch(torch, a):
    return torch.from_numpy(np.ascontiguousarray(as_numpy(a)))


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_matches_torch(causal):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    N, T, E, heads = 2, 5, 8, 2
    attn = L.MultiHeadAttention(E, heads, causal=causal)
    x = Variable(rng.standard_normal((N, T, E)).astype(np.float32))
    gy = rng.standard_normal((N, T, E)).astype(np.float32)
    y = attn(x)
    (y * gy).sum().backward()

    mha = torch.nn.MultiheadAttention(E, heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(_to_torch(torch, attn.qkv.W.data.T))
        mha.in_proj_bias.copy_(_to_torch(torch, attn.qkv.b.data))
        mha.out_proj.weight.copy_(_to_torch(torch, attn.out.W.data.T))
        mha.out_proj.bias.copy_(_to_torch(torch, attn.out.b.data))
    tx = _to_torch(torch, x.data).requires_grad_()
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if causal else None
    ty, _ = mha(tx, tx, tx, attn_mask=mask, need_weights=False)
    (ty * _to_torch(torch, gy)).sum().backward()

    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(attn.qkv.W.grad.data, mha.in_proj_weight.grad.numpy().T,
                               atol=1e-4, rtol=1e-4)


def test_causal_attention_ignores_the_future():
    attn = L.MultiHeadAttention(4, 2, causal=True)
    x = np.random.default_rng(0).standard_normal((1, 4, 4)).astype(np.float32)
    changed = x.copy()
    changed[0, 3] += 10
    np.testing.assert_allclose(attn(x).data[0, :3], attn(changed).data[0, :3], atol=1e-6)


def test_attention_gradients_numerically():
    attn = L.MultiHeadAttention(4, 2, causal=True, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((1, 3, 4))
    check_backward(attn, x)
    check_double_backward(attn, x)


def test_attention_errors():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        L.MultiHeadAttention(6, 4)
    with pytest.raises(ValueError, match=r"\(N, T, 8\)"):
        L.MultiHeadAttention(8, 2)(np.zeros((5, 8), dtype=np.float32))


def test_transformer_block_forward_backward(xp):
    block = L.TransformerBlock(8, 2, hidden_size=16, causal=True)
    if xp is not np:
        block.to_gpu()
    x = Variable(xp.asarray(np.random.default_rng(0).standard_normal((2, 3, 8)),
                            dtype=np.float32))
    y = block(x)
    assert y.shape == (2, 3, 8) and y.dtype == np.float32
    y.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in block.params())
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("cls", [L.MultiHeadAttention, L.TransformerBlock])
@pytest.mark.parametrize("args, kwargs, error, message", [
    ((0, 1), {}, ValueError, "embed_dim (features per position) must be a positive integer, "
                             "got 0"),
    ((8, 0), {}, ValueError, "num_heads (attention heads) must be a positive integer, got 0"),
    ((8, 2.0), {}, TypeError, "num_heads (attention heads) must be a positive integer, got "
                              "2.0 (float)"),
    ((6, 4), {}, ValueError, "embed_dim=6 is not a multiple of num_heads=4"),
    ((8, 2), {"causal": "yes"}, TypeError, "causal must be True or False, got 'yes'"),
    ((8, 2), {"dropout_ratio": 1.0}, ValueError, "dropout_ratio must be a number in [0, 1)"),
    ((8, 2), {"dropout_ratio": -0.5}, ValueError, "dropout_ratio must be"),
    ((8, 2), {"dtype": np.int8}, ValueError, "dtype must be a floating-point dtype"),
])
def test_bad_arguments_are_refused_in_the_layers_name(cls, args, kwargs, error, message):
    with pytest.raises(error) as info:
        cls(*args, **kwargs)
    assert str(info.value).startswith(f"{cls.__name__}: ") and message in str(info.value)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"hidden_size": 0}, ValueError, "TransformerBlock: hidden_size (width of the MLP) must "
                                     "be a positive integer or None"),
    ({"activation": "gelu"}, TypeError, "TransformerBlock: activation must be a function "
                                        "(such as F.relu) or None, got 'gelu' (str)"),
])
def test_transformer_block_checks_its_own_arguments(kwargs, error, message):
    with pytest.raises(error) as info:
        L.TransformerBlock(8, 2, **kwargs)
    assert message in str(info.value)


def test_multi_head_attention_checks_nobias():
    with pytest.raises(TypeError, match="MultiHeadAttention: nobias must be True or False"):
        L.MultiHeadAttention(8, 2, nobias=None)
    attn = L.MultiHeadAttention(8, 2, nobias=True)
    assert attn.qkv.b is None and attn.out.b is None


def test_repr_shows_the_sizes():
    attn = L.MultiHeadAttention(8, 2, causal=True, dropout_ratio=0.1)
    assert repr(attn) == (
        "MultiHeadAttention(\n"
        "  embed_dim=8, num_heads=2, causal=True, dropout_ratio=0.1\n"
        "  (qkv): Linear(in_size=8, out_size=24)\n"
        "  (out): Linear(in_size=8, out_size=8)\n"
        ")"
    )
    block = L.TransformerBlock(8, 2, activation=F.relu, dtype=np.float64)
    assert repr(block).startswith(
        "TransformerBlock(\n"
        "  embed_dim=8, num_heads=2, hidden_size=32, activation=relu\n"
        "  (ln1): LayerNorm(size=8, eps=1e-05, dtype=float64)\n"
        "  (attn): MultiHeadAttention(\n"
        "    embed_dim=8, num_heads=2, dtype=float64\n"
    )
