"""The fused ReLU -> BN -> max-pool training step against PyTorch's layers and a float64 truth."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pattnet.models import fused
from pattnet.models.encoder import PatchEncoder, init_authors, set_fused

pytestmark = pytest.mark.skipif(not fused.available(), reason="numba missing")


def _bn(c: int, seed: int = 0) -> nn.BatchNorm2d:
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(c, generator=g) * 0.5 + 1.0)
        bn.weight[0] = -0.7  # a negative gamma: pooling must take the window minimum there
        bn.bias.copy_(torch.randn(c, generator=g) * 0.1)
        bn.running_var.fill_(2.0)
    return bn


def _run(kind: str, x0: torch.Tensor, bn0: nn.BatchNorm2d, g: torch.Tensor):
    bn = _bn(x0.shape[1])
    bn.load_state_dict(bn0.state_dict())
    x = x0.clone()
    if kind == "f64":
        bn, x = bn.double(), x.double()
    x.requires_grad_()
    if kind == "fused":
        assert fused.applies(x, bn)
        y = fused.relu_bn_pool(x, bn)
    else:
        y = nn.functional.max_pool2d(bn(torch.relu(x)), 2)
    y.backward(g.to(y.dtype))
    return y, x.grad, bn


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("shape", [(6, 16, 24, 24), (3, 8, 7, 9)])
def test_matches_float64_at_least_as_well_as_pytorch_bf16(shape):
    torch.manual_seed(0)
    x0 = torch.randn(shape).to(memory_format=torch.channels_last).bfloat16()
    g = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2).bfloat16()
    bn0 = _bn(shape[1])
    truth = _run("f64", x0, bn0, g)
    ours = _run("fused", x0, bn0, g)
    ref = _run("torch", x0, bn0, g)
    assert ours[0].shape == ref[0].shape and ours[0].dtype == torch.bfloat16
    assert ours[0].is_contiguous(memory_format=torch.channels_last)
    assert ours[1].shape == x0.shape and ours[1].dtype == torch.bfloat16
    # output: one bf16 rounding of the truth
    assert _rel(ours[0], truth[0]) < 4e-3
    # input gradient, BN parameter gradients and running statistics: no worse than PyTorch's bf16
    for i, (a, b) in enumerate([(ours[1], truth[1]), (ours[2].weight.grad, truth[2].weight.grad),
                                (ours[2].bias.grad, truth[2].bias.grad),
                                (ours[2].running_mean, truth[2].running_mean),
                                (ours[2].running_var, truth[2].running_var)]):
        torch_err = _rel([ref[1], ref[2].weight.grad, ref[2].bias.grad, ref[2].running_mean,
                          ref[2].running_var][i], b)
        assert _rel(a, b) <= max(torch_err * 1.05, 1e-6), i
    assert _rel(ours[1], truth[1]) < 5e-3
    assert int(ours[2].num_batches_tracked) == 1


def test_negative_inputs_get_no_gradient_and_windows_of_zeros_pool_to_the_first():
    x = torch.full((2, 4, 4, 4), -1.0).to(memory_format=torch.channels_last).bfloat16()
    x[:, :, 0, 0] = 2.0  # one positive value in the first window of each map
    x.requires_grad_()
    bn = _bn(4)
    y = fused.relu_bn_pool(x, bn)
    y.sum().backward()
    assert (x.grad[x.detach() <= 0] == 0).all()
    assert (x.grad[:, :, 0, 0] != 0).all()


def test_batch_split_across_threads_gives_the_same_result():
    torch.manual_seed(1)
    x0 = torch.randn(8, 16, 12, 12).to(memory_format=torch.channels_last).bfloat16()
    g = torch.randn(8, 16, 6, 6).bfloat16()
    outs = []
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            outs.append(_run("fused", x0, _bn(16), g))
        finally:
            torch.set_num_threads(before)
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.allclose(outs[0][1].float(), outs[1][1].float(), rtol=0, atol=1e-6)
    assert torch.allclose(outs[0][2].weight.grad, outs[1][2].weight.grad, rtol=1e-6)


def test_falls_back_off_the_fast_path():
    bn = _bn(4)
    assert not fused.applies(torch.randn(2, 4, 6, 6).bfloat16(), bn)  # NCHW
    cl = torch.randn(2, 4, 6, 6).to(memory_format=torch.channels_last)
    assert not fused.applies(cl, bn)  # fp32
    assert fused.applies(cl.bfloat16(), bn)
    assert not fused.applies(cl.bfloat16(), bn.eval())


def test_encoder_trains_the_same_with_and_without_fusion():
    """One bf16 training step of a patch encoder: same output and close gradients, same eval output
    and state-dict keys whether the fused step is on or off."""
    torch.manual_seed(0)
    x = torch.rand(4, 3, 100, 100).to(memory_format=torch.channels_last).bfloat16()
    base = PatchEncoder().to(memory_format=torch.channels_last)
    init_authors(base)
    grads, outs, encs = [], [], []
    for on in (False, True):
        enc = PatchEncoder().to(memory_format=torch.channels_last)
        enc.load_state_dict(base.state_dict())
        set_fused(enc, on)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            e = enc(x)
        e.float().square().sum().backward()
        outs.append(e.float())
        grads.append(torch.cat([p.grad.flatten() for p in enc.parameters()]))
        assert list(enc.state_dict()) == list(base.state_dict())
        assert int(enc.features[2].num_batches_tracked) == 1
        encs.append(enc)
    assert _rel(outs[1], outs[0]) < 0.02
    assert _rel(grads[1], grads[0]) < 0.05
    for a, b in zip(encs[0].buffers(), encs[1].buffers(), strict=True):  # running statistics
        assert torch.allclose(a.float(), b.float(), rtol=1e-2, atol=1e-4)
    enc = encs[1].eval()  # evaluation never takes the fused step
    with torch.no_grad():
        on = enc(x.float())
        set_fused(enc, False)
        assert torch.equal(on, enc(x.float()))
