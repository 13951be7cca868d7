# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Export of the prompt-free network to ONNX, ``torch.export`` or a model folder, each checked.

The exported graph takes ``images`` B×3×H×W float32 RGB on the 0–255 scale (any B, H, W:
all three axes are dynamic) and returns ``mask_logits`` B×1×H×W (logits; threshold at 0 for
probability 0.5). SAM's normalisation and the resize to the internal resolution S are inside
the graph, exactly as in :meth:`IRSAM.forward`. ``onnx`` and ``onnxruntime`` are optional
dependencies (``pip install irsam[export]``), imported when needed. See ``docs/peft-export.md``;
TensorRT users build an engine from the ONNX file with ``trtexec --onnx=model.onnx --fp16``.
The model folder (``format=pretrained``, :mod:`irsam.pretrained`) is PyTorch without pickle:
``config.json`` + ``model.safetensors``, read by :class:`irsam.predictor.Predictor`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from irsam.models.irsam import IRSAM
from irsam.models.peft import has_peft, merge_peft
from irsam.models.resize import traceable_resize_to_square
from irsam.utils import ConfigError, MissingFileError, atomic_path, get_logger

log = get_logger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "mask_logits"
FORMATS = ("onnx", "torch_export", "pretrained")
METADATA_PREFIX = "irsam."
EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")
"""Loggers of the exporters, held at WARNING by :func:`quiet_exporters` (the ONNX exporter's graph
passes log hundreds of INFO lines)."""


class ExportError(RuntimeError):
    """An export failed its check, or an exported file is not an irsam prompt-free network."""


class PromptFreeNetwork(nn.Module):
    """Export wrapper: images → mask logits only (a plain tensor, as exporters want).

    It computes :meth:`IRSAM.forward`'s mask logits with the resize to the internal resolution
    written without branches on the frame size
    (:func:`~irsam.models.resize.traceable_resize_to_square`: nearest growth as an index gather
    that ONNX runtimes reproduce exactly, antialiased shrinking of frames larger than S), so one
    graph with dynamic height and width serves every frame size.

    Arguments:
      net (IRSAM): the network (eval mode; adapters merged).
    """

    def __init__(self, net: IRSAM) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """
        Arguments:
          images (torch.Tensor): B×3×H×W float32 RGB, 0–255.
        Returns:
          torch.Tensor: B×1×H×W mask logits.
        """
        net = self.net
        deep, shallow = net.encode(
            traceable_resize_to_square(images, net.img_size, net.resize_mode)
        )
        outputs = net.mask_decoder(
            image_embeddings=deep,
            image_pe=net.pe_layer((deep.shape[-2], deep.shape[-1])).unsqueeze(0).to(deep.dtype),
            dense_prompt_embeddings=net.no_mask_embed.weight.reshape(1, -1, 1, 1),
            shallow_embeddings=shallow,
        )
        return F.interpolate(
            outputs[OUTPUT_NAME], size=images.shape[-2:], mode="bilinear", align_corners=False
        )


def _onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            "ONNX export needs the optional packages onnx and onnxruntime: "
            "pip install 'irsam[export]' (or pip install onnx onnxscript onnxruntime)."
        ) from err
    return onnx, onnxruntime


def load_network(ckpt_path: str | os.PathLike) -> tuple[IRSAM, int]:
    """Rebuild the network stored in a ``train.py`` checkpoint.

    Arguments:
      ckpt_path (str | PathLike): the Lightning ``.ckpt``.
    Returns:
      (IRSAM, int): the network in eval mode, and the loader size it was trained at
      (:func:`~irsam.lit_module.checkpoint_sizes`).
    """
    from irsam.lit_module import IRSAMLitModule, checkpoint_sizes

    module = IRSAMLitModule.from_checkpoint(ckpt_path)
    return module.net.eval(), checkpoint_sizes(module)[0]


def prepare_for_export(net: IRSAM) -> PromptFreeNetwork:
    """Eval mode, adapters merged (``peft`` layers do not export as cleanly), CPU float32.

    Arguments:
      net (IRSAM): the network (modified in place when it carries adapters).
    Returns:
      PromptFreeNetwork: the export wrapper, in eval mode.
    """
    if has_peft(net):
        merge_peft(net)
    return PromptFreeNetwork(net.float().cpu()).eval()


def example_images(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Deterministic random images for tracing and checking.

    Arguments:
      batch (int): B.
      height (int): H.
      width (int): W.
      seed (int): generator seed.
    Returns:
      torch.Tensor: B×3×H×W float32 in [0, 255].
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator) * 255.0


def _trace_size(size: Sequence[int], internal: int) -> tuple[int, int]:
    """A tracing (H, W) with H ≠ W and neither equal to the internal size, so that the exporter
    keeps height and width symbolic instead of specialising them to the example."""
    height, width = (max(16, int(v)) for v in size)
    if height == internal:
        height += 8
    if width in (height, internal):
        width = max(height, internal) + 8
    return height, width


def _dynamic_shapes() -> dict[str, dict[int, Any]]:
    dim = torch.export.Dim
    return {
        INPUT_NAME: {
            0: dim("batch", min=1, max=4096),
            2: dim("height", min=16, max=16384),
            3: dim("width", min=16, max=16384),
        }
    }


def export_onnx(
    model: PromptFreeNetwork,
    path: str | os.PathLike,
    *,
    example_size: Sequence[int],
    opset: int = 18,
) -> Path:
    """Write an ONNX file with dynamic batch, height and width (``torch.onnx`` dynamo exporter).

    Arguments:
      model (PromptFreeNetwork): from :func:`prepare_for_export`.
      path (str | PathLike): destination ``.onnx`` (weights > 2 GB go to an external data file
        next to it).
      example_size (Sequence[int]): (H, W) of the tracing example (batch 2).
      opset (int): ONNX opset version.
    Returns:
      Path: the written file, validated with ``onnx.checker``.
    """
    onnx, _ = _onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = example_images(2, *_trace_size(example_size, model.net.img_size))
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            dynamic_shapes=_dynamic_shapes(),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            verbose=False,
        )
    net = model.net
    program.model.metadata_props.update(
        {
            f"{METADATA_PREFIX}internal_size": str(net.img_size),
            f"{METADATA_PREFIX}encoder": type(net.image_encoder).__name__,
            f"{METADATA_PREFIX}edge_branch": str(net.has_edge_branch),
            f"{METADATA_PREFIX}resize_mode": net.resize_mode,
        }
    )
    program.save(str(path))
    onnx.checker.check_model(str(path))
    log.info("wrote %s (opset %d, dynamic batch/height/width)", path, opset)
    return path


def check_onnx_signature(path: str | os.PathLike) -> dict[str, str]:
    """Check that an ONNX file is an irsam prompt-free export (inputs, outputs, ranks).

    Arguments:
      path (str | PathLike): the ``.onnx`` file.
    Returns:
      dict[str, str]: its ``irsam.*`` metadata (may be empty for hand-made files).
    Raises:
      FileNotFoundError: no such file.
      ExportError: unreadable, or another model's signature (the message names the file).
    """
    onnx, _ = _onnx()
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"{path}: no such ONNX file. Write one with "
            "python export.py ckpt_path=<file.ckpt> format=onnx."
        )
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises several types for foreign files
        raise ExportError(
            f"{path}: cannot be read as an ONNX model ({type(err).__name__}: {err})."
        ) from err
    initialisers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initialisers]

    def describe(values) -> str:
        parts = []
        for v in values:
            dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            parts.append(f"{v.name}{dims}")
        return ", ".join(parts) or "none"

    def rank_and_channels(value) -> tuple[int, int | None]:
        dims = value.type.tensor_type.shape.dim
        channels = dims[1].dim_value if len(dims) > 1 and dims[1].dim_value else None
        return len(dims), channels

    float_type = onnx.TensorProto.FLOAT
    good_input = (
        len(inputs) == 1
        and inputs[0].name == INPUT_NAME
        and inputs[0].type.tensor_type.elem_type == float_type
        and rank_and_channels(inputs[0]) == (4, 3)
    )
    outputs = {o.name: o for o in proto.graph.output}
    good_output = OUTPUT_NAME in outputs and rank_and_channels(outputs[OUTPUT_NAME]) == (4, 1)
    if not (good_input and good_output):
        raise ExportError(
            f"{path}: not an irsam prompt-free network export. Expected input "
            f"{INPUT_NAME}[batch, 3, height, width] (float32, 0-255) and output "
            f"{OUTPUT_NAME}[batch, 1, height, width]; the file has inputs "
            f"({describe(inputs)}) and outputs ({describe(proto.graph.output)}). Export the "
            "checkpoint with python export.py ckpt_path=<file.ckpt> format=onnx."
        )
    return {p.key: p.value for p in proto.metadata_props if p.key.startswith(METADATA_PREFIX)}


class OnnxNetwork:
    """An exported ONNX file behind the network's interface: ``images → {"mask_logits": ...}``.

    Arguments:
      path (str | PathLike): an ``.onnx`` file written by :func:`export_onnx` (checked with
        :func:`check_onnx_signature`).
      device (str): ``cpu``, or ``cuda`` (uses onnxruntime's CUDA provider when installed).
      threads (int): intra-op threads of the CPU provider (0 = onnxruntime's default).
    """

    def __init__(self, path: str | os.PathLike, *, device: str = "cpu", threads: int = 0) -> None:
        _, ort = _onnx()
        self.path = Path(path)
        self.metadata = check_onnx_signature(self.path)
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)

    @property
    def img_size(self) -> int | None:
        """Internal resolution S stored in the file's metadata (None for foreign files)."""
        value = self.metadata.get(f"{METADATA_PREFIX}internal_size")
        return int(value) if value else None

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """
        Arguments:
          images (torch.Tensor): B×3×H×W float RGB, 0–255 (any device; copied to the host).
        Returns:
          dict[str, torch.Tensor]: ``"mask_logits"`` B×1×H×W float32 logits on the CPU.
        """
        array = images.detach().to("cpu", torch.float32).contiguous().numpy()
        (logits,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})
        return {OUTPUT_NAME: torch.from_numpy(logits)}


def verify_onnx(
    model: PromptFreeNetwork,
    path: str | os.PathLike,
    *,
    batch_sizes: Sequence[int],
    image_sizes: Sequence[Sequence[int]],
    atol: float,
    rtol: float,
) -> list[dict[str, Any]]:
    """Run torch and onnxruntime on the same images and compare the mask logits.

    The check passes when max |onnx − torch| ≤ atol + rtol · max |torch| for every case.

    Arguments:
      model (PromptFreeNetwork): the torch network that was exported.
      path (str | PathLike): the ``.onnx`` file.
      batch_sizes (Sequence[int]): batch sizes to test.
      image_sizes (Sequence[Sequence[int]]): (H, W) pairs to test.
      atol (float): absolute tolerance on logits.
      rtol (float): tolerance relative to the largest |logit| of the torch output.
    Returns:
      list[dict]: one row per case: batch, height, width, max_abs_diff, limit.
    Raises:
      ExportError: a case exceeds its limit (the message names the file and the case).
    """
    runtime = OnnxNetwork(path)
    rows = []
    for batch in batch_sizes:
        for height, width in image_sizes:
            images = example_images(int(batch), int(height), int(width), seed=1)
            with torch.no_grad():
                expected = model(images)
            actual = runtime(images)[OUTPUT_NAME]
            if tuple(actual.shape) != tuple(expected.shape):
                raise ExportError(
                    f"{path}: onnxruntime output shape {tuple(actual.shape)} != "
                    f"torch {tuple(expected.shape)} for input {tuple(images.shape)}"
                )
            diff = float((actual - expected).abs().max())
            limit = atol + rtol * float(expected.abs().max())
            rows.append(
                {
                    "batch": int(batch),
                    "height": int(height),
                    "width": int(width),
                    "max_abs_diff": diff,
                    "limit": limit,
                }
            )
            if not np.isfinite(diff) or diff > limit:
                raise ExportError(
                    f"{path}: onnxruntime and torch disagree on a {batch}×3×{height}×{width} "
                    f"input: max |diff| {diff:.3g} > {limit:.3g} (atol {atol} + rtol {rtol} · "
                    "max |logit|). Try another opset or report the model config."
                )
    log.info(
        "onnxruntime matches torch on %d cases (worst %.3g)",
        len(rows),
        max(r["max_abs_diff"] for r in rows),
    )
    return rows


def export_torch(
    model: PromptFreeNetwork, path: str | os.PathLike, *, example_size: Sequence[int]
) -> Path:
    """Write a ``torch.export`` program (``.pt2``, load with ``torch.export.load``).

    Arguments:
      model (PromptFreeNetwork): from :func:`prepare_for_export`.
      path (str | PathLike): destination ``.pt2``.
      example_size (Sequence[int]): (H, W) of the tracing example (batch 2).
    Returns:
      Path: the written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        program = torch.export.export(
            model,
            (example_images(2, *_trace_size(example_size, model.net.img_size)),),
            dynamic_shapes={"images": _dynamic_shapes()[INPUT_NAME]},
        )
    with atomic_path(path, "exported model") as tmp, open(tmp, "wb") as handle:
        torch.export.save(program, handle)
    log.info("wrote %s (torch.export, dynamic batch/height/width)", path)
    return path


def export_pretrained(
    ckpt_path: str | os.PathLike, output: str | os.PathLike, *, atol: float, rtol: float
) -> dict[str, Any]:
    """Write a model folder (:mod:`irsam.pretrained`) and check that it rebuilds the checkpoint's
    network: both run on one image at the training loader size.

    Arguments:
      ckpt_path (str | PathLike): the ``train.py`` checkpoint.
      output (str | PathLike): the model folder to write.
      atol (float): absolute logit tolerance of the check (PEFT merging rounds).
      rtol (float): tolerance relative to the largest |logit|.
    Returns:
      dict[str, Any]: ``output``, ``format`` and the ``check`` row.
    Raises:
      ExportError: the rebuilt network disagrees beyond the tolerance.
    """
    from irsam.lit_module import IRSAMLitModule, checkpoint_sizes

    module = IRSAMLitModule.from_checkpoint(ckpt_path)
    folder = module.save_pretrained(output)
    rebuilt = IRSAMLitModule.from_checkpoint(folder)
    size = checkpoint_sizes(module)[0]
    images = example_images(1, size, size, seed=1)
    with torch.no_grad():
        expected = module(images)[OUTPUT_NAME]
        actual = rebuilt(images)[OUTPUT_NAME]
    diff = float((actual - expected).abs().max())
    limit = atol + rtol * float(expected.abs().max())
    if not np.isfinite(diff) or diff > limit:
        raise ExportError(
            f"{folder}: the model folder's network disagrees with {ckpt_path} on a 1×3×{size}×"
            f"{size} input: max |diff| {diff:.3g} > {limit:.3g}. Report the model config."
        )
    log.info("wrote the model folder %s (matches the checkpoint: max |diff| %.3g)", folder, diff)
    check = {"batch": 1, "height": size, "width": size, "max_abs_diff": diff, "limit": limit}
    return {"output": str(folder), "format": "pretrained", "check": [check]}


@contextlib.contextmanager
def quiet_exporters(verbose: bool = False) -> Iterator[None]:
    """Hold the exporters' loggers (:data:`EXPORTER_LOGGERS`) at WARNING inside the block, then
    restore their levels.

    Arguments:
      verbose (bool): True leaves the loggers alone (their INFO lines are shown).
    """
    loggers = [] if verbose else [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def run_export(
    *,
    ckpt_path: str | os.PathLike,
    output: str | os.PathLike,
    format: str = "onnx",
    loader_size: int | None = None,
    opset: int = 18,
    check_batch_sizes: Sequence[int] = (1, 2),
    check_image_sizes: Sequence[Sequence[int]] | None = None,
    atol: float = 1e-3,
    rtol: float = 1e-3,
) -> dict[str, Any]:
    """Load a checkpoint, export it, and (ONNX, model folder) check it against torch.

    Arguments:
      ckpt_path (str | PathLike): the ``train.py`` checkpoint.
      output (str | PathLike): destination file (``.onnx`` or ``.pt2``), or folder
        (``pretrained``).
      format (str): ``onnx``, ``torch_export`` or ``pretrained`` (a model folder:
        :func:`export_pretrained`).
      loader_size (int | None): side of the tracing example; None = the checkpoint's training
        loader size.
      opset (int): ONNX opset.
      check_batch_sizes (Sequence[int]): batch sizes of the check.
      check_image_sizes (Sequence[Sequence[int]] | None): (H, W) of the check; None = the
        tracing size and a smaller non-square one.
      atol (float): absolute logit tolerance of the check.
      rtol (float): tolerance relative to the largest |logit|.
    Returns:
      dict[str, Any]: ``output``, ``format`` and, for ONNX and model folders, the ``check``
      rows.
    """
    if format not in FORMATS:
        raise ConfigError(f"format={format!r} is not one of {FORMATS}.")
    if format == "pretrained":
        return export_pretrained(ckpt_path, output, atol=atol, rtol=rtol)
    net, train_size = load_network(ckpt_path)
    size = int(loader_size or train_size)
    model = prepare_for_export(net)
    if format == "torch_export":
        return {
            "output": str(export_torch(model, output, example_size=(size, size))),
            "format": format,
        }
    path = export_onnx(model, output, example_size=(size, size), opset=opset)
    sizes = check_image_sizes or [(size, size), (max(16, size // 2), max(16, (3 * size) // 4))]
    rows = verify_onnx(
        model, path, batch_sizes=check_batch_sizes, image_sizes=sizes, atol=atol, rtol=rtol
    )
    return {"output": str(path), "format": format, "check": rows}
