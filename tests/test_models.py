import pytest
import torch

from pattnet.errors import PattnetError
from pattnet.models import create_model, list_models
from pattnet.models.inputs import to_model_input

ALL = list_models()


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_paper_parameter_counts():
    # One per-AU network with the paper's attention; the authors' code has no b_f.
    assert n_params(create_model("pattnet", aus=[1])) == 4_212_001
    assert n_params(create_model("pattnet", aus=[1], attention_bias=False)) == 4_211_941
    assert n_params(create_model("pattnet", aus=[1, 2, 4])) == 3 * 4_212_001


def test_registry_has_required_names():
    assert {"pattnet", "pattnet-softmax", "single-patch", "holistic", "pattnet-multilabel"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_model_forward_backward(name):
    torch.manual_seed(0)
    aus = [1, 2, 12]
    m = create_model(name, aus=aus)
    x = {"patches": torch.rand(3, 9, 3, 100, 100), "holistic": torch.rand(3, 3, 200, 200),
         "mesh": torch.rand(3, 478, 3) * 0.05}
    out = m(x[m.input_kind] if len(m.input_kinds) == 1 else {k: x[k] for k in m.input_kinds})
    assert out.logits.shape == (3, len(aus))
    out.logits.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    if name.startswith("pattnet") and "patches" in m.input_kinds:
        assert out.attention.shape == (3, len(aus), 9)
    else:
        assert out.attention is None


@pytest.mark.parametrize("name", ["pattnet", "pattnet-multilabel"])
def test_sigmoid_attention_in_unit_interval(name):
    m = create_model(name, aus=[1, 4])
    a = m(torch.randn(4, 9, 3, 100, 100) * 3).attention
    assert (a >= 0).all() and (a <= 1).all()
    assert not torch.allclose(a.sum(-1), torch.ones_like(a.sum(-1)))


def test_softmax_attention_sums_to_one():
    m = create_model("pattnet-softmax", aus=[1, 4])
    a = m(torch.randn(4, 9, 3, 100, 100)).attention
    assert torch.allclose(a.sum(-1), torch.ones(4, 2), atol=1e-5)


def test_per_au_networks_are_independent():
    m = create_model("pattnet", aus=[1, 2])
    x = torch.rand(2, 9, 3, 100, 100)
    m(x).logits[:, 0].sum().backward()
    grads = [any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
             for net in m.net.nets]
    assert grads == [True, False]


def test_single_patch_uses_only_its_patch():
    torch.manual_seed(0)
    m = create_model("single-patch", aus=[1], patch=4).eval()
    x = torch.rand(2, 9, 3, 100, 100)
    y = x.clone()
    y[:, [0, 1, 2, 4, 5, 6, 7, 8]] = 0
    assert torch.allclose(m(x).logits, m(y).logits)
    y[:, 3] = 0
    assert not torch.allclose(m(x).logits, m(y).logits)


def test_block_order_option():
    a = create_model("pattnet", aus=[1], order="relu-bn").net.nets[0].encoders[0].features
    b = create_model("pattnet", aus=[1], order="bn-relu").net.nets[0].encoders[0].features
    assert [type(l).__name__ for l in a][:3] == ["Conv2d", "ReLU", "BatchNorm2d"]
    assert [type(l).__name__ for l in b][:3] == ["Conv2d", "BatchNorm2d", "ReLU"]


def test_authors_init():
    enc = create_model("pattnet", aus=[1]).net.nets[0].encoders[0]
    conv = enc.features[0]
    bn = enc.features[2]
    assert abs(conv.weight.std().item() - 0.02) < 0.005 and conv.bias.abs().max() == 0
    assert abs(bn.weight.mean().item() - 1) < 0.01 and bn.bias.abs().max() == 0


def test_unknown_model_name():
    with pytest.raises(PattnetError, match="unknown model 'resnet'"):
        create_model("resnet")
    with pytest.raises(PattnetError, match="unknown config key dropout for ModelConfig"):
        create_model("pattnet", dropout=0.5)


@pytest.mark.parametrize("channels_last", [True, False])
def test_input_normalisation(channels_last):
    import numpy as np

    x = np.zeros((2, 9, 100, 100, 3), np.uint8)
    x[0, 3, 5, 7, 1] = 255
    t = to_model_input(x, "patches", channels_last=channels_last)
    assert t.shape == (2, 9, 3, 100, 100)
    assert t[0, 3, 1, 5, 7] == 1.0 and t[1, 0, 0, 0, 0] == -1.0
    if channels_last:
        assert t[:, 0].is_contiguous(memory_format=torch.channels_last)
    # rounded once to the autocast dtype: the same numbers, the same layout
    b = to_model_input(x, "patches", channels_last=channels_last, dtype=torch.bfloat16)
    assert b.dtype == torch.bfloat16 and b.stride() == t.stride()
    assert torch.equal(b, t.to(torch.bfloat16))
