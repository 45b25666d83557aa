"""Tests for zerograd.models: containers, VGG16, ResNet and the Transformer LM."""

import os

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
import zerograd.models as models
from zerograd import Variable, test_mode
from zerograd.models import (
    MLP,
    VGG16,
    Model,
    ResNet,
    ResNet50,
    ResNet152,
    Sequential,
    TransformerLM,
)


@pytest.fixture(autouse=True)
def _seeded():
    L.seed(0)


# ---- containers ----------------------------------------------------------------------------
def test_sequential_registers_layers_by_position():
    model = Sequential(L.Linear(4), F.relu, L.Linear(2))
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    y = model(x)
    assert y.shape == (3, 2) and len(model) == 3 and model[1] is F.relu
    assert list(model.state_dict()) == ["l0.W", "l0.b", "l2.W", "l2.b"]
    expected = F.relu(x @ model[0].W.data + model[0].b.data).data @ model[2].W.data
    np.testing.assert_allclose(y.data, expected + model[2].b.data, rtol=1e-5)
    with pytest.raises(TypeError, match="item 1"):
        Sequential(L.Linear(2), 3)


def test_sequential_shows_its_functions_by_position():
    # (the functions were left out, and the layers shown as l0, l2: gaps a reader
    # could not place)
    model = Sequential(L.Linear(4, in_size=3), F.relu, Sequential(L.Linear(2), F.tanh))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_size=3, out_size=4)\n"
        "  (1): relu\n"
        "  (2): Sequential(\n"
        "    (0): Linear(in_size=None, out_size=2)\n"
        "    (1): tanh\n"
        "  )\n"
        ")"
    )
    assert repr(Sequential()) == "Sequential()"


def test_mlp_matches_its_definition():
    model = MLP((5, 3))
    x = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    y = model(x)
    l0, l1 = model.layers
    h = 1 / (1 + np.exp(-(x @ l0.W.data + l0.b.data)))
    np.testing.assert_allclose(y.data, h @ l1.W.data + l1.b.data, rtol=1e-5, atol=1e-6)
    assert [name for name in model._params] == ["l0", "l1"]
    relu_model = MLP((5, 3), activation=F.relu)
    assert relu_model(x).dtype == np.float32


def test_model_plot(tmp_path):
    pytest.importorskip("zerograd.utils.graph")
    model = MLP((3, 1))
    target = tmp_path / "model.png"
    model.plot(np.ones((2, 2), dtype=np.float32), to_file=str(target))
    assert target.exists() or (tmp_path / "model.dot").exists()


# ---- VGG16 ----------------------------------------------------------------------------------
def test_vgg16_forward_on_a_small_image():
    model = VGG16()
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with test_mode():
        y = model(x)
    assert y.shape == (1, 1000) and y.dtype == np.float32
    assert model.fc6.W.shape == (512, 4096)
    assert list(model.state_dict())[:4] == ["conv1_1.W", "conv1_1.b", "conv1_2.W", "conv1_2.b"]


def test_vgg16_pretrained_downloads_the_published_weights(monkeypatch):
    download = pytest.importorskip("zerograd.utils.download")
    asked = []

    def fake_get_file(url, *args, **kwargs):
        asked.append(url)
        return "/cache/vgg16.npz"

    loaded = []
    monkeypatch.setattr(download, "get_file", fake_get_file)
    monkeypatch.setattr(VGG16, "load_weights", lambda self, path: loaded.append(path))
    VGG16(pretrained=True)
    assert asked == [VGG16.WEIGHTS_PATH] and loaded == ["/cache/vgg16.npz"]
    VGG16(pretrained="/local/vgg16.npz")
    assert loaded[-1] == "/local/vgg16.npz" and len(asked) == 1


def test_vgg16_pretrained_from_a_local_file(tmp_path):
    # A real VGG16 file is half a gigabyte: give the lazy weights small stand-ins.
    rng = np.random.default_rng(0)
    state = {k.replace(".", "/"): v for k, v in VGG16().state_dict().items()}  # DeZero names
    state["conv1_1/b"] = rng.standard_normal(64).astype(np.float32)
    state["conv1_1/W"] = rng.standard_normal((64, 3, 3, 3)).astype(np.float32)
    state["fc8/W"] = rng.standard_normal((5, 1000)).astype(np.float32)
    path = tmp_path / "vgg16.npz"
    with open(path, "wb") as f:
        np.savez(f, **state)
    model = VGG16(pretrained=str(path))
    np.testing.assert_array_equal(model.conv1_1.W.data, state["conv1_1/W"])
    np.testing.assert_array_equal(model.conv1_1.b.data, state["conv1_1/b"])
    np.testing.assert_array_equal(model.fc8.W.data, state["fc8/W"])
    assert model.fc6.W.data is None  # absent from the file: created at the first call


def test_vgg16_preprocess():
    Image = pytest.importorskip("PIL.Image")
    rgb = np.zeros((8, 10, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red
    x = VGG16.preprocess(Image.fromarray(rgb), size=(6, 4))
    assert x.shape == (3, 4, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], [-103.939, -116.779, 200 - 123.68], rtol=1e-6)
    from_array = VGG16.preprocess(rgb, size=(6, 4), dtype=np.float64)
    assert from_array.dtype == np.float64
    np.testing.assert_allclose(from_array, x, rtol=1e-6)
    with pytest.raises(ValueError, match="RGB"):
        VGG16.preprocess(np.zeros((4, 4)))


# ---- ResNet ---------------------------------------------------------------------------------
def test_resnet50_forward_on_a_small_batch():
    model = ResNet50()
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    y = model(x)
    assert y.shape == (2, 1000) and y.dtype == np.float32
    assert model.conv1.W.shape == (64, 3, 7, 7) and model.fc6.W.shape == (2048, 1000)
    assert model.res5.a.bn4.avg_mean.shape == (2048,)
    assert "res2.a.bn1.avg_var" in model.state_dict()
    with test_mode():
        assert model(x[:1]).shape == (1, 1000)


@pytest.mark.parametrize("stride", [1, 2])
def test_bottleneck_blocks_backward(stride):
    block = models.BuildingBlock(2, 3, mid_channels=2, out_channels=4, stride=stride)
    x = Variable(np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32))
    y = block(x)
    assert y.shape == (2, 4, 4 // stride, 4 // stride)
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None for p in block.params())


def test_resnet_variants_and_errors():
    model = ResNet152()
    assert [model.res2._names[-1], model.res3._names[-1], model.res4._names[-1]] == [
        "b2", "b7", "b35"]
    with pytest.raises(ValueError, match="50, 101 or 152"):
        ResNet(34)
    with pytest.raises(ValueError, match="local .npz"):
        ResNet50(pretrained=True)


# ---- Transformer language model -----------------------------------------------------------
def _tiny_lm(**kwargs):
    return TransformerLM(vocab_size=7, embed_dim=8, num_heads=2, num_layers=2, max_len=6,
                         **kwargs)


def test_transformer_lm_forward_backward():
    lm = _tiny_lm()
    ids = np.random.default_rng(0).integers(0, 7, size=(3, 5))
    logits = lm(ids)
    assert logits.shape == (3, 5, 7) and logits.dtype == np.float32
    loss = F.softmax_cross_entropy(F.reshape(logits[:, :-1], (-1, 7)), ids[:, 1:].reshape(-1))
    lm.cleargrads()
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in lm.params())
    assert lm.position.W.grad.data[5:].any() == 0  # position 5 was never used


def test_transformer_lm_is_causal():
    lm = _tiny_lm()
    ids = np.array([[1, 2, 3, 4]])
    changed = np.array([[1, 2, 3, 0]])
    np.testing.assert_allclose(lm(ids).data[:, :3], lm(changed).data[:, :3], atol=1e-6)


def test_transformer_lm_learns_a_repeating_sequence():
    from zerograd.optimizers import Adam

    lm = _tiny_lm()
    optimizer = Adam(alpha=0.01).setup(lm)
    ids = np.array([[0, 1, 2, 3, 0, 1]])
    for _ in range(60):
        loss = F.softmax_cross_entropy(F.reshape(lm(ids[:, :-1]), (-1, 7)), ids[0, 1:])
        lm.cleargrads()
        loss.backward()
        optimizer.update()
    assert float(loss.data) < 0.1
    np.testing.assert_array_equal(lm.generate([0, 1], length=6, temperature=0),
                                  [0, 1, 2, 3, 0, 1, 2, 3])


def test_transformer_lm_generate():
    lm = _tiny_lm()
    out = lm.generate(np.array([[1, 2], [3, 4]]), length=7, rng=np.random.default_rng(0))
    assert out.shape == (2, 9) and out.dtype == np.int64  # runs past max_len by cropping
    assert ((0 <= out) & (out < 7)).all()
    again = lm.generate(np.array([[1, 2], [3, 4]]), length=7, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)
    top1 = lm.generate([5], length=4, top_k=1, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(top1, lm.generate([5], length=4, temperature=0))
    with pytest.raises(ValueError, match="max_len=6"):
        lm(np.zeros((1, 7), dtype=np.int64))


def test_transformer_lm_save_and_load(tmp_path):
    lm = _tiny_lm()
    lm.save_weights(os.path.join(tmp_path, "lm.npz"))
    L.seed(1)
    fresh = _tiny_lm()
    fresh.load_weights(os.path.join(tmp_path, "lm.npz"))
    ids = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(lm(ids).data, fresh(Variable(ids)).data)


def test_model_is_a_layer():
    assert issubclass(Model, L.Layer) and models.__all__[0] == "Model"


def test_transformer_lm_on_each_device(xp):
    lm = _tiny_lm()
    if xp is not np:
        lm.to_gpu()
    ids = xp.asarray(np.array([[1, 2, 3]]))
    logits = lm(ids)
    assert type(logits.data) is type(ids)
    logits.sum().backward()
    out = lm.generate([1, 2], length=3, temperature=0)
    assert isinstance(out, np.ndarray) and out.shape == (5,)


def test_resnet_block_on_each_device(xp):
    block = models.BuildingBlock(2, 3, mid_channels=2, out_channels=4, stride=2)
    if xp is not np:
        block.to_gpu()
    x = xp.asarray(np.random.default_rng(0).standard_normal((2, 3, 4, 4)), dtype=np.float32)
    y = block(x)
    y.sum().backward()
    assert y.shape == (2, 4, 2, 2) and type(y.data) is type(x)
    with test_mode():
        assert block(x).shape == (2, 4, 2, 2)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="fc_output_sizes is empty"):
        MLP(())
    lm = TransformerLM(vocab_size=5, embed_dim=8, num_heads=2, num_layers=1, max_len=4)
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        lm.generate([1, 2], 3, top_k=0)
    with pytest.raises(ValueError, match="non-empty sequence"):
        lm.generate([], 3)
