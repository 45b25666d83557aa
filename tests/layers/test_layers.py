"""Tests for the feed-forward layers: Linear, Conv2d, EmbedID, normalisation, dropout and
attention."""

import numpy as np
import pytest

import zerograd.layers as L
from zerograd import Variable, test_mode
from zerograd.cuda import as_numpy
from zerograd.testing import check_backward, check_double_backward


@pytest.fixture(autouse=True)
def _seeded():
    L.seed(0)


def _snapshot(layer):
    return {k: as_numpy(v).copy() for k, v in layer.state_dict().items()}


def _assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---- lazy sizes and dtypes ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_infers_input_size_and_keeps_dtype(xp, dtype):
    layer = L.Linear(3, dtype=dtype)
    assert layer.W.data is None
    if xp is not np:
        layer.to_gpu()
    x = xp.asarray(np.ones((2, 5, 4), dtype=dtype))
    y = layer(x)
    assert layer.W.shape == (4, 3) and layer.in_size == 4
    assert y.shape == (2, 5, 3) and y.dtype == dtype
    assert abs(float(as_numpy(layer.W.data).std()) - 0.5) < 0.3  # scale sqrt(1/4)
    y.sum().backward()
    assert layer.W.grad.dtype == dtype and layer.b.grad.shape == (3,)
    assert L.Linear(3, nobias=True, in_size=2).b is None


def test_linear_wrong_input_size_raises():
    layer = L.Linear(3, in_size=4)
    with pytest.raises(ValueError, match="linear"):
        layer(np.ones((2, 5), dtype=np.float32))


def test_conv_layers_infer_channels(xp):
    x = xp.asarray(np.ones((2, 3, 6, 6), dtype=np.float32))
    conv = L.Conv2d(4, kernel_size=3, stride=1, pad=1)
    deconv = L.Deconv2d(5, kernel_size=(2, 2), stride=2, nobias=True)
    if xp is not np:
        conv.to_gpu()
    y = conv(x)
    assert conv.W.shape == (4, 3, 3, 3) and y.shape == (2, 4, 6, 6)
    z = deconv(y)
    assert deconv.W.shape == (4, 5, 2, 2) and deconv.b is None and z.shape == (2, 5, 12, 12)
    assert z.dtype == np.float32


def test_embed_id(xp):
    embed = L.EmbedID(7, 3)
    if xp is not np:
        embed.to_gpu()
    ids = xp.asarray(np.array([[0, 6], [6, 2]]))
    y = embed(ids)
    assert y.shape == (2, 2, 3)
    np.testing.assert_array_equal(as_numpy(y.data[0, 1]), as_numpy(embed.W.data[6]))


def test_layer_norm_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 3, 5)).astype(np.float32)
    ln = L.LayerNorm()
    y = ln(x)
    assert ln.gamma.shape == (5,)
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), (5,), eps=1e-5).numpy()
    np.testing.assert_allclose(y.data, expected, atol=1e-5)


def test_dropout_layer():
    x = np.ones((200,), dtype=np.float32)
    with test_mode():
        np.testing.assert_array_equal(L.Dropout(0.5)(x).data, x)
    y = L.Dropout(0.5)(x).data
    assert set(np.unique(y)) <= {0.0, 2.0} and 0 < (y == 0).sum() < 200


# ---- BatchNorm ------------------------------------------------------------------------------
def test_batch_norm_running_stats_are_buffers(rng):
    bn = L.BatchNorm()
    x = (rng.standard_normal((8, 3, 2, 2)) * 3 + 1).astype(np.float32)
    y = bn(x)
    assert y.shape == x.shape and bn.avg_mean.shape == (3,)
    assert list(bn.state_dict()) == ["gamma", "beta", "avg_mean", "avg_var"]
    assert [p.name for p in bn.params()] == ["gamma", "beta"]
    np.testing.assert_allclose(bn.avg_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    with test_mode():
        before = bn.avg_mean.copy()
        y_test = bn(x)
        np.testing.assert_array_equal(bn.avg_mean, before)
    expected = (x - bn.avg_mean[:, None, None]) / np.sqrt(bn.avg_var[:, None, None] + 2e-5)
    np.testing.assert_allclose(y_test.data, expected, rtol=1e-4, atol=1e-5)


def test_batch_norm_stats_survive_save_and_load(tmp_path, rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    bn = L.BatchNorm()
    for _ in range(3):
        bn(x + 2)
    bn.save_weights(tmp_path / "bn.npz")
    fresh = L.BatchNorm()
    fresh.load_weights(tmp_path / "bn.npz")
    _assert_same(_snapshot(bn), _snapshot(fresh))
    with test_mode():
        np.testing.assert_array_equal(bn(x).data, fresh(x).data)

def _to_torch(torch, a):
    return torch.from_numpy(np.ascontiguousarray(as_numpy(a)))


# ---- attention ---------------------------------------------------------------------------
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
