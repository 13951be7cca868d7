# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""WPMD: perfect reconstruction, orthonormality, identity at init, gradients, parameter counts."""

from __future__ import annotations

import pytest
import torch

from irsam.models import WPMD


@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym4"])
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 4, 5, 7), (1, 2, 1, 1), (1, 2, 16, 6)])
def test_dwt_idwt_perfect_reconstruction(wavelet: str, shape: tuple) -> None:
    """With diffusion off the block's U is exactly its input, odd sizes included."""
    torch.manual_seed(0)
    block = WPMD(channels=shape[1], wavelet=wavelet, diffusion=False, iterations=2)
    x = torch.randn(*shape, dtype=torch.float64)
    assert torch.allclose(block.diffuse(x), x, atol=1e-10)
    assert torch.allclose(block.diffuse(x.float()), x.float(), atol=1e-5)


@pytest.mark.parametrize("wavelet", ["haar", "db2"])
def test_dwt_is_orthonormal(wavelet: str) -> None:
    """Parseval: the coefficients carry the energy of the input (orthonormal transform)."""
    block = WPMD(channels=3, wavelet=wavelet)
    x = torch.randn(2, 3, 12, 10, dtype=torch.float64)
    coeffs = block.dwt(x)
    assert coeffs.shape == (2, 3, 4, 6, 5)
    assert torch.allclose(coeffs.square().sum(), x.square().sum())
    assert torch.allclose(block.idwt(coeffs), x)


def test_haar_matches_pywavelets() -> None:
    """Our Haar approximation band equals PyWavelets' periodised one."""
    pywt = pytest.importorskip("pywt")
    block = WPMD(channels=1)
    x = torch.randn(1, 1, 8, 6, dtype=torch.float64)
    approx, _ = pywt.dwt2(x[0, 0].numpy(), "haar", mode="periodization")
    assert torch.allclose(block.dwt(x)[0, 0, 0], torch.from_numpy(approx))


def test_non_orthogonal_wavelet_is_rejected() -> None:
    with pytest.raises(ValueError, match="orthogonal"):
        WPMD(channels=2, wavelet="bior2.2")


@pytest.mark.parametrize("size", [(8, 8), (7, 9), (1, 3)])
def test_identity_at_init(size: tuple) -> None:
    """γ = 0 at init: the block returns its input exactly, diffusion on, any size."""
    block = WPMD(channels=4, iterations=2)
    x = torch.randn(2, 4, *size)
    y = block(x)
    assert y.shape == x.shape
    assert torch.equal(y, x)


def test_diffusion_smooths_small_details() -> None:
    """Small details (s << k) are shrunk: the diffused map has less detail energy."""
    block = WPMD(channels=1, init_contrast=10.0)
    x = 0.1 * torch.randn(1, 1, 16, 16)

    def detail(t: torch.Tensor) -> torch.Tensor:
        return block.dwt(t)[:, :, 1:].square().sum()

    assert detail(block.diffuse(x)) < 0.5 * detail(x)


def test_gradients_only_gamma_at_init_then_all() -> None:
    torch.manual_seed(0)
    block = WPMD(channels=3)
    x = torch.randn(2, 3, 8, 8)
    block(x).square().sum().backward()
    assert block.gamma.grad is not None and block.gamma.grad.abs().sum() > 0
    for name, param in block.named_parameters():
        if name != "gamma":
            assert param.grad is None or param.grad.abs().sum() == 0, name
    block.zero_grad()
    with torch.no_grad():
        block.gamma.fill_(0.5)
    block(x).square().sum().backward()
    for name, param in block.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient for {name}"


def test_parameter_counts() -> None:
    """9C² + 4C + 1 with the full 3×3 refine; 9C + C² + 4C + 1 with depthwise + 1×1."""
    for c in (160, 320):
        assert sum(p.numel() for p in WPMD(channels=c).parameters()) == 9 * c * c + 4 * c + 1
    c = 768
    dw = WPMD(channels=c, refine="dwconv")
    assert sum(p.numel() for p in dw.parameters()) == 9 * c + c * c + 4 * c + 1


def test_runs_in_float32_under_autocast() -> None:
    block = WPMD(channels=2)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    x = torch.randn(1, 2, 6, 6).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


def _pywt_haar_step(block: WPMD, x: torch.Tensor) -> torch.Tensor:
    """One shrinkage step with PyWavelets' ``dwt2`` / ``idwt2`` ('haar'), channel by channel."""
    pywt = pytest.importorskip("pywt")
    contrast = torch.nn.functional.softplus(block.kappa).detach().double().numpy()
    step = float(torch.sigmoid(block.theta))
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            approx, details = pywt.dwt2(x[i, c].numpy(), "haar", mode="periodization")
            magnitude = (sum(d**2 for d in details) + block.eps) ** 0.5
            factor = 1.0 - step / (1.0 + (magnitude / contrast[c]) ** 2)
            shrunk = tuple(d * factor for d in details)
            rec = pywt.idwt2((approx, shrunk), "haar", mode="periodization")
            out[i, c] = torch.from_numpy(rec)
    return out


@pytest.mark.parametrize("shape", [(2, 3, 8, 6), (1, 2, 7, 5)])
def test_haar_closed_form_equals_convolution_path_and_pywavelets(shape: tuple) -> None:
    """The closed-form Haar step (2×2 block means) equals the generic DWT/IDWT convolution path
    and PyWavelets' dwt2/idwt2 shrinkage, in float64 and float32, odd sizes included."""
    torch.manual_seed(0)
    block = WPMD(channels=shape[1], iterations=2, init_contrast=0.7, init_step=0.6)
    with torch.no_grad():
        block.kappa.add_(torch.randn(shape[1]) * 0.3)
    x = torch.randn(*shape, dtype=torch.float64)
    contrast, step = torch.nn.functional.softplus(block.kappa), torch.sigmoid(block.theta)
    even = x[..., : shape[2] // 2 * 2, : shape[3] // 2 * 2]
    fast = block._haar_step(even, contrast.double(), step.double())
    assert not torch.allclose(fast, even, atol=1e-3)  # the step really shrinks the details
    assert torch.allclose(fast, block._wavelet_step(even, contrast.double(), step.double()))
    assert torch.allclose(fast.detach(), _pywt_haar_step(block, even), atol=1e-10)
    for dtype, atol in ((torch.float64, 1e-10), (torch.float32, 1e-6)):
        height, width = shape[-2:]
        padded = torch.nn.functional.pad(
            x.to(dtype), (0, width % 2, 0, height % 2), mode=block.pad_mode
        )
        for _ in range(block.iterations):  # the generic path, step by step
            padded = block._wavelet_step(padded, contrast.to(dtype), step.to(dtype))
        fast = block.diffuse(x.to(dtype))
        generic = padded[..., :height, :width]
        assert torch.allclose(fast, generic, atol=atol), (dtype, (fast - generic).abs().max())
