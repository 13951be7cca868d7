# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Strict checkpoint loading with explicit key maps and allow-lists (docs/model.md §7).

Accepted files (always read with ``torch.load(weights_only=True)``):

* ``"sam"``: a flat MobileSAM / SAM state dict (``mobile_sam.pt``, ``sam_vit_*.pth``) with the
  prefixes ``image_encoder.``, ``prompt_encoder.``, ``mask_decoder.``;
* ``"irsam"``: a flat state dict of an :class:`IRSAM` model (:func:`save_model_weights`);
* ``"lightning"``: a Lightning checkpoint of this framework, whose ``state_dict`` holds the
  model under ``net.``.

Into an :class:`IRSAM` model a ``"sam"`` file maps ``prompt_encoder.pe_layer.*`` and
``prompt_encoder.no_mask_embed.*`` to ``pe_layer.*`` / ``no_mask_embed.*``; the ImageNet head and
the prompting-only prompt-encoder keys are ignored; WPMD and the GAD additions are the only keys
allowed to be new. Any other missing or unexpected key, or any shape mismatch, is an error naming
the file. Into a segment-anything ``Sam`` (from ``build_prompt_sam``) a ``"sam"`` file loads key
for key, with only the ImageNet head ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from segment_anything.modeling import Sam
from torch import nn

from irsam.models.irsam import IRSAM
from irsam.utils import MissingFileError, UserError, atomic_save_torch, get_logger

log = get_logger(__name__)

PathLike = str | os.PathLike
KINDS = ("auto", "sam", "irsam", "lightning")
LIGHTNING_PREFIX = "net."

# File keys dropped on purpose (allow-list of ignored keys).
_IGNORED_HEAD = ("image_encoder.norm_head.", "image_encoder.head.")
_IGNORED_PROMPT = (
    "prompt_encoder.point_embeddings.",
    "prompt_encoder.not_a_point_embed.",
    "prompt_encoder.mask_downscaling.",
    # the authors' IRSAM prompt encoder (IPIC-Lab/IRSAM build_sam_IRSAM) builds a second,
    # unused random-Fourier PE of 32 features
    "prompt_encoder.pe_layer_2.",
)
# The authors always build the shallow branch; a model with gad_fusion=deep has none.
_OPTIONAL_BRANCH = "mask_decoder.compress_vit_feat."
# SAM prompt-encoder keys that IRSAM keeps, and their names in IRSAM.
_RENAMED = {
    "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (
        "pe_layer.positional_encoding_gaussian_matrix"
    ),
    "prompt_encoder.no_mask_embed.weight": "no_mask_embed.weight",
}
# IRSAM parameters absent from MobileSAM/SAM files (allow-list of new keys).
_NEW_IN_IRSAM = (
    "image_encoder.wpmd.",
    "mask_decoder.edge_token.",
    "mask_decoder.edge_mlp.",
    "mask_decoder.embedding_encoder.",
    "mask_decoder.compress_vit_feat.",
    "mask_decoder.embedding_maskfeature.",
)
_VIT_NAMES = {(768, 12): "SAM ViT-B", (1024, 24): "SAM ViT-L", (1280, 32): "SAM ViT-H"}


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file cannot be read or does not fit the model."""


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_checkpoint` did.

    Attributes:
      path (str): the file.
      kind (str): ``"sam"``, ``"irsam"``, ``"lightning"`` or ``"sam2"`` (load_sam2_checkpoint).
      loaded (tuple[str, ...]): model keys filled from the file.
      new (tuple[str, ...]): model keys absent from the file, kept at their initial values
        (WPMD, edge token, GAD branches; only for ``"sam"`` files).
      ignored (tuple[str, ...]): file keys dropped by the allow-list (ImageNet head, prompting
        keys, non-model entries of a Lightning checkpoint).
    """

    path: str
    kind: str
    loaded: tuple[str, ...]
    new: tuple[str, ...]
    ignored: tuple[str, ...]

    def summary(self) -> str:
        """Counts line, e.g. ``"mobile_sam.pt (sam): 580 loaded, 31 new, 9 ignored"``."""
        return (
            f"{self.path} ({self.kind}): {len(self.loaded)} loaded, {len(self.new)} new, "
            f"{len(self.ignored)} ignored"
        )


def _looks_like_text(head: bytes) -> bool:
    """True when the first bytes of a file decode as text without control bytes."""
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\n\r\t" for ch in text)


def read_checkpoint(path: PathLike) -> dict[str, object]:
    """Read a checkpoint file safely (``weights_only=True``) with clear errors.

    Arguments:
      path (str | PathLike): the file.
    Returns:
      dict: the top-level dictionary of the file.
    Raises:
      FileNotFoundError: the file does not exist.
      CheckpointError: empty, text, truncated/corrupt, non-tensor content or not a dictionary.
    """
    file = Path(path)
    if not file.exists():
        raise MissingFileError(f"checkpoint file {file} does not exist")
    if not file.is_file():
        raise CheckpointError(f"checkpoint path {file} is not a regular file")
    with open(file, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise CheckpointError(f"checkpoint file {file} is empty")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if _looks_like_text(head):  # first: a text file also fails the weights-only unpickler
            problem = "is a text file, not a PyTorch checkpoint"
        elif "Weights only load failed" in str(exc):
            problem = (
                "holds objects other than tensors and plain containers and is refused "
                "(checkpoints are read with weights_only=True)"
            )
        elif head.startswith(b"PK"):
            problem = "is a truncated or corrupt PyTorch archive"
        else:
            problem = "is not a readable PyTorch checkpoint (corrupt or another format)"
        raise CheckpointError(f"checkpoint file {file} {problem} ({detail})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"checkpoint file {file} holds a {type(obj).__name__}, not a state dict"
        )
    return obj


def read_training_checkpoint(path: PathLike) -> dict[str, object]:
    """Read a checkpoint written by ``train.py`` (a Lightning ``.ckpt``) with clear errors.

    Arguments:
      path (str | PathLike): the ``.ckpt`` file.
    Returns:
      dict: the checkpoint, with ``state_dict`` and ``hyper_parameters`` (the module's config).
    Raises:
      FileNotFoundError: the file does not exist.
      CheckpointError: unreadable (see :func:`read_checkpoint`), or not written by ``train.py``.
    """
    obj = read_checkpoint(path)
    hparams = obj.get("hyper_parameters")
    if (
        not isinstance(obj.get("state_dict"), dict)
        or not isinstance(hparams, dict)
        or "net" not in hparams
    ):
        kind = _detect_kind(obj)
        hint = (
            "pretrained SAM / MobileSAM weights go to model.net.checkpoint=<file> (training)"
            if kind == "sam"
            else "use a .ckpt written by train.py (logs/<task>/runs/<time>/checkpoints/)"
        )
        raise CheckpointError(
            f"checkpoint file {path} was not written by irsam's train.py (it holds no module "
            f"config and state_dict; it looks like a {kind!r} file): {hint}"
        )
    return obj


def _flat_state_dict(obj: Mapping[str, object], file: str) -> dict[str, torch.Tensor]:
    """Check that a mapping is a flat name → tensor state dict."""
    bad = [key for key, value in obj.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"checkpoint file {file} is not a flat state dict: {len(bad)} non-tensor entries "
            f"(e.g. {bad[:5]})"
        )
    return dict(obj)  # type: ignore[arg-type]


def _describe(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """Human-readable name of the architecture behind a key → shape mapping."""
    if "image_encoder.patch_embed.seq.0.c.weight" in shapes:
        stem = shapes["image_encoder.patch_embed.seq.2.c.weight"][0]
        top = (
            shapes["image_encoder.neck.0.weight"][1]
            if "image_encoder.neck.0.weight" in shapes
            else "?"
        )
        text = (
            "TinyViT-5M (MobileSAM)"
            if (stem, top) == (64, 320)
            else f"TinyViT (stem {stem}, top {top} ch)"
        )
    elif "image_encoder.patch_embed.proj.weight" in shapes:
        dim = shapes["image_encoder.patch_embed.proj.weight"][0]
        blocks = {
            m.group(1) for k in shapes if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k))
        }
        text = _VIT_NAMES.get((dim, len(blocks)), f"ViT (embed dim {dim}, depth {len(blocks)})")
    else:
        text = "no recognised SAM image encoder"
    if any(k.startswith("image_encoder.wpmd.") for k in shapes):
        text += " + WPMD"
    if "mask_decoder.edge_token.weight" in shapes:
        text += " + GAD edge decoder"
    return text


def _detect_kind(obj: Mapping[str, object]) -> str:
    """``"lightning"``, ``"sam"`` or ``"irsam"`` from the top-level structure and key prefixes."""
    if isinstance(obj.get("state_dict"), dict):
        return "lightning"
    return "sam" if any(str(k).startswith("prompt_encoder.") for k in obj) else "irsam"


def _map_keys(
    state: dict[str, torch.Tensor], kind: str, model: nn.Module, expected: Mapping[str, object]
) -> tuple[dict[str, torch.Tensor], list[str], tuple[str, ...]]:
    """File keys as model keys: (mapped state, ignored keys, prefixes allowed to be absent)."""
    mapped: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    has_branch = any(k.startswith(_OPTIONAL_BRANCH) for k in expected)
    for key, value in state.items():
        if key.startswith(_IGNORED_HEAD) or (
            isinstance(model, IRSAM) and key.startswith(_OPTIONAL_BRANCH) and not has_branch
        ):
            ignored.append(key)
        elif isinstance(model, IRSAM) and kind == "sam" and key.startswith("prompt_encoder."):
            if key in _RENAMED:
                mapped[_RENAMED[key]] = value
            elif key.startswith(_IGNORED_PROMPT):
                ignored.append(key)
            else:
                mapped[key] = value
        else:
            mapped[key] = value
    allowed_new = _NEW_IN_IRSAM if isinstance(model, IRSAM) and kind == "sam" else ()
    return mapped, ignored, allowed_new


def _load_strictly(
    model: nn.Module,
    file: str,
    kind: str,
    mapped: dict[str, torch.Tensor],
    ignored: list[str],
    allowed_new: tuple[str, ...],
    describe: Callable[[Mapping[str, tuple[int, ...]]], str],
    expected: Mapping[str, torch.Tensor] | None = None,
) -> LoadReport:
    """Load file keys mapped to model names strictly against the allow-list."""
    expected = model.state_dict() if expected is None else expected
    unexpected = sorted(k for k in mapped if k not in expected)
    missing = sorted(k for k in expected if k not in mapped and not k.startswith(allowed_new))
    mismatched = sorted(
        k for k in mapped if k in expected and tuple(mapped[k].shape) != tuple(expected[k].shape)
    )
    if unexpected or missing or mismatched:
        problems = []
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:5]})")
        if missing:
            problems.append(f"{len(missing)} missing keys (e.g. {missing[:5]})")
        if mismatched:
            examples = [
                f"{k}: file {tuple(mapped[k].shape)} vs model {tuple(expected[k].shape)}"
                for k in mismatched[:3]
            ]
            problems.append(f"{len(mismatched)} shape mismatches (e.g. {examples})")
        file_desc = describe({k: tuple(v.shape) for k, v in mapped.items()})
        model_desc = describe({k: tuple(v.shape) for k, v in expected.items()})
        raise CheckpointError(
            f"checkpoint file {file} does not fit the model: the checkpoint looks like "
            f"{file_desc}, the model is {model_desc}; {'; '.join(problems)}"
        )
    new = sorted(k for k in expected if k not in mapped)
    model.load_state_dict({k: mapped.get(k, v) for k, v in expected.items()}, strict=True)
    report = LoadReport(
        path=file,
        kind=kind,
        loaded=tuple(sorted(mapped)),
        new=tuple(new),
        ignored=tuple(sorted(ignored)),
    )
    log.info("loaded checkpoint %s", report.summary())
    if report.ignored:
        log.info("ignored keys of %s: %s", file, ", ".join(report.ignored))
    return report


def load_checkpoint(model: nn.Module, path: PathLike, *, kind: str = "auto") -> LoadReport:
    """Load a MobileSAM/SAM, irsam or Lightning checkpoint strictly against an allow-list.

    Arguments:
      model (nn.Module): an :class:`IRSAM` model, or a segment-anything ``Sam`` (``"sam"`` files).
      path (str | PathLike): the checkpoint file.
      kind (str): ``"auto"`` (detect), ``"sam"``, ``"irsam"`` or ``"lightning"``.
    Returns:
      LoadReport: loaded, new and ignored keys (counts are logged).
    Raises:
      FileNotFoundError: missing file.
      CheckpointError: unreadable file, wrong kind, or keys/shapes that do not fit the model
        (the message names the file and says what the checkpoint looks like).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(model, (IRSAM, Sam)):
        raise TypeError(f"expected an IRSAM or segment-anything Sam, got {type(model).__name__}")
    file = str(path)
    obj = read_checkpoint(path)
    detected = _detect_kind(obj)
    if kind != "auto" and kind != detected:
        raise CheckpointError(
            f"checkpoint file {file} looks like a {detected!r} checkpoint, not {kind!r}"
        )
    ignored: list[str] = []
    if detected == "lightning":
        inner = obj["state_dict"]
        ignored = [k for k in inner if not k.startswith(LIGHTNING_PREFIX)]
        state = _flat_state_dict(
            {
                k[len(LIGHTNING_PREFIX) :]: v
                for k, v in inner.items()
                if k.startswith(LIGHTNING_PREFIX)
            },
            file,
        )
        if not state:
            raise CheckpointError(
                f"Lightning checkpoint {file} has no model weights under '{LIGHTNING_PREFIX}'"
            )
    else:
        state = _flat_state_dict(obj, file)
    if isinstance(model, Sam) and detected != "sam":
        raise CheckpointError(
            f"checkpoint file {file} is a {detected!r} checkpoint; "
            "a promptable Sam needs a MobileSAM/SAM file"
        )

    expected = model.state_dict()
    mapped, dropped, allowed_new = _map_keys(state, detected, model, expected)
    return _load_strictly(
        model, file, detected, mapped, ignored + dropped, allowed_new, _describe, expected
    )


def save_model_weights(model: nn.Module, path: PathLike) -> None:
    """Save the model's state dict (CPU tensors, ``"irsam"`` layout) atomically.

    Arguments:
      model (nn.Module): the model.
      path (str | PathLike): destination file; written via a temporary file and a rename.
    """
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_save_torch(state, path)
    log.info("saved %d tensors to %s", len(state), path)


# ---------------------------------------------------------------------------------------------
# SAM 2 / SAM 2.1 checkpoints (docs/sam2.md)
# ---------------------------------------------------------------------------------------------

SAM2_MODEL_KEY = "model"
# Video / memory / prompting parts of SAM2Base that the prompt-free image model does not build.
_SAM2_IGNORED = (
    "memory_attention.",
    "memory_encoder.",
    "maskmem_tpos_enc",
    "no_mem_pos_enc",
    "no_obj_ptr",
    "no_obj_embed_spatial",
    "obj_ptr_proj.",
    "obj_ptr_tpos_proj.",
    "mask_downsample.",
    "sam_prompt_encoder.point_embeddings.",
    "sam_prompt_encoder.not_a_point_embed.",
    "sam_prompt_encoder.mask_downscaling.",
    "sam_mask_decoder.obj_score_token.",
    "sam_mask_decoder.pred_obj_score_head.",
)
# SAM 2 names → IRSAM names (exact keys, then prefixes).
_SAM2_RENAMED = {
    "no_mem_embed": "image_encoder.no_mem_embed",
    "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (
        "pe_layer.positional_encoding_gaussian_matrix"
    ),
    "sam_prompt_encoder.no_mask_embed.weight": "no_mask_embed.weight",
}
_SAM2_PREFIXES = (("image_encoder.", "image_encoder."), ("sam_mask_decoder.", "mask_decoder."))
# SAM 2's two-way transformer MLPs are ``mlp.layers.{0,1}``; segment-anything's ``mlp.lin{1,2}``.
_SAM2_MLP = re.compile(r"^(mask_decoder\.transformer\.layers\.\d+\.mlp\.)layers\.([01])\.")
_HIERA_NAMES = {
    (96, 12): "Hiera-T",
    (96, 16): "Hiera-S",
    (112, 24): "Hiera-B+",
    (144, 48): "Hiera-L",
}


def _is_sam2_layout(obj: Mapping[str, object]) -> bool:
    """True for SAM 2's file layout: ``{"model": {"image_encoder.trunk.…": tensor, …}}``."""
    inner = obj.get(SAM2_MODEL_KEY)
    return isinstance(inner, dict) and any(str(k).startswith("image_encoder.trunk.") for k in inner)


def _describe_sam2(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """Name of the SAM 2 trunk behind a key → shape mapping (IRSAM names), e.g. ``Hiera-T``."""
    stem = shapes.get("image_encoder.trunk.patch_embed.proj.weight")
    if stem is None:
        return "no SAM 2 Hiera trunk"
    blocks = {
        m.group(1) for k in shapes if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))
    }
    key = (stem[0], len(blocks))
    return f"SAM 2 {_HIERA_NAMES.get(key, f'Hiera (embed dim {key[0]}, {key[1]} blocks)')}"


def _map_sam2_keys(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename SAM 2 keys to IRSAM keys; returns (mapped state, ignored file keys)."""
    mapped: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        if key.startswith(_SAM2_IGNORED):
            ignored.append(key)
            continue
        name = _SAM2_RENAMED.get(key)
        if name is None:
            for old, new in _SAM2_PREFIXES:
                if key.startswith(old):
                    name = new + key[len(old) :]
                    break
        if name is None:
            name = key  # reported as unexpected below
        mapped[_SAM2_MLP.sub(lambda m: f"{m.group(1)}lin{int(m.group(2)) + 1}.", name)] = value
    return mapped, ignored


def load_sam2_checkpoint(model: nn.Module, path: PathLike) -> LoadReport:
    """Load an official SAM 2 / SAM 2.1 file strictly into an IRSAM model with a SAM 2 encoder.

    Official files (``sam2.1_hiera_{tiny,small,base_plus,large}.pt``, ``sam2_hiera_*.pt``) are a
    dict ``{"model": state_dict}`` of SAM 2's ``SAM2Base``. Loaded: ``image_encoder.trunk.*`` and
    ``image_encoder.neck.*`` as they are, ``no_mem_embed`` into the encoder, the prompt encoder's
    random-Fourier matrix and ``no_mask_embed``, and the mask decoder (transformer, tokens,
    upscaling, ``conv_s0`` / ``conv_s1``, hypernetworks, IoU head). Ignored by name and reported:
    memory attention / encoder, object pointers and scores, mask downsampling, the prompting-only
    prompt-encoder parts, top-level entries other than ``"model"``. New (kept at their initial
    values): WPMD and the GAD edge-branch modules. Any other difference is an error naming the
    file. Files in any other layout (irsam weights, Lightning checkpoints) go to
    :func:`load_checkpoint`.

    Arguments:
      model (nn.Module): an :class:`IRSAM` model built by ``build_irsam_sam2_hiera`` /
        ``build_sam2_hiera``.
      path (str | PathLike): the checkpoint file.
    Returns:
      LoadReport: with kind ``"sam2"`` for official files (counts are logged).
    Raises:
      FileNotFoundError: missing file.
      CheckpointError: unreadable/truncated file, or keys / shapes that do not fit the model
        (the message names the file and the Hiera size found in it).
    """
    if not isinstance(model, IRSAM):
        raise TypeError(f"expected an IRSAM model, got {type(model).__name__}")
    file = str(path)
    obj = read_checkpoint(path)
    if not _is_sam2_layout(obj):
        return load_checkpoint(model, path)
    state = _flat_state_dict(obj[SAM2_MODEL_KEY], file)  # type: ignore[arg-type]
    mapped, ignored = _map_sam2_keys(state)
    ignored += [f"<top-level> {k}" for k in obj if k != SAM2_MODEL_KEY]
    return _load_strictly(model, file, "sam2", mapped, ignored, _NEW_IN_IRSAM, _describe_sam2)
