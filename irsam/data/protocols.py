# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Evaluation protocols: which split a number was measured on, for results files.

A number in this field means little without its split (docs/protocols.md): IRSAM's NUDT-SIRST
test set shares only 131 of its 266 images with the standard one. :func:`protocol_record`
describes the split a data module uses (dataset, protocol, source, split files, sizes), and
:data:`KNOWN_PROTOCOLS` lists the published sizes, so a record can say whether its sizes match
the protocol it names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from irsam.data.layouts import split_files, split_spec
from irsam.utils import get_logger

log = get_logger(__name__)

KNOWN_PROTOCOLS: dict[str, dict[str, tuple[int, int]]] = {
    "nudt_sirst": {"irsam": (1061, 266), "standard": (663, 664)},
    "nuaa_sirst": {"irsam": (341, 86), "standard": (213, 214), "sirst_val": (341, 86)},
    "irstd1k": {"irsam": (800, 200), "standard": (800, 201)},
}
"""Published (trainval, test) sizes by dataset config name and protocol (docs/protocols.md)."""


def protocol_record(datamodule: Any) -> dict[str, Any]:
    """Dataset, protocol, split files and sizes of a set-up data module, for results.json.

    Arguments:
      datamodule (IRSTDDataModule): after ``setup()``.
    Returns:
      dict[str, Any]: JSON-ready ``dataset``, ``protocol``, ``split`` (the ``dataset.split``
      name, which may be an alias), ``source``, ``root``, ``files`` (the split file of each part,
      or null), ``exclude``, ``sizes`` (``train``, ``val``, ``test``, ``trainval`` of the
      protocol: ``train`` counts the training split before any label budget),
      ``validation`` (how val was chosen), ``train_subset`` (the label budget,
      ``IRSTDDataModule.train_subset``: None without one) and ``matches_published`` (True/False
      when the protocol's published sizes are known, else None).
    Raises:
      RuntimeError: ``setup()`` has not run.
    """
    if datamodule.train_dataset is None:
        raise RuntimeError("call datamodule.setup() before protocol_record()")
    subset = datamodule.train_subset
    sizes = {
        "train": subset["of"] if subset else len(datamodule.train_dataset),
        "val": len(datamodule.val_dataset or []),
        "test": len(datamodule.test_dataset or []),
    }
    sizes["trainval"] = sizes["train"] + sizes["val"]
    name = datamodule.name
    if hasattr(datamodule, "member_records"):
        protocols = sorted({r["protocol"] for r in datamodule.member_records.values()})
        return {
            "dataset": name,
            "protocol": f"union-{'+'.join(protocols)}",
            "split": "union",
            "source": "union of the members' splits ("
            + ", ".join(datamodule.members_present)
            + ")",
            "root": None,
            "files": None,
            "exclude": [],
            "sizes": sizes,
            "validation": f"{datamodule.val_fraction:g} of each member's trainval, seed "
            f"{datamodule.split_seed}",
            "train_subset": datamodule.train_subset,
            "matches_published": None,
            "members": datamodule.member_records,
            "members_missing": sorted(datamodule.members_missing),
        }
    if datamodule.synthetic is not None:
        return {
            "dataset": name,
            "protocol": "synthetic",
            "split": "synthetic",
            "source": f"procedural generator, seed {datamodule.synthetic.get('seed', 0)}",
            "root": None,
            "files": None,
            "exclude": [],
            "sizes": sizes,
            "validation": "separate generated stream",
            "train_subset": datamodule.train_subset,
            "matches_published": None,
        }
    spec = split_spec(datamodule.splits, datamodule.split)
    files = split_files(datamodule.root, spec)
    protocol = str(spec["protocol"])
    validation = (
        f"file {files['val']}"
        if files["val"] is not None
        else f"{datamodule.val_fraction:g} of trainval, seed {datamodule.split_seed}"
    )
    published = KNOWN_PROTOCOLS.get(name, {}).get(protocol)
    matches = None
    if published is not None:
        matches = (sizes["trainval"], sizes["test"]) == published
        if not matches:
            log.warning(
                "dataset %s, protocol %s: %d trainval / %d test images, published %d / %d",
                name,
                protocol,
                sizes["trainval"],
                sizes["test"],
                *published,
            )
    return {
        "dataset": name,
        "protocol": protocol,
        "split": datamodule.split,
        "source": spec.get("source"),
        "root": str(datamodule.root),
        "files": {k: None if v is None else str(Path(v).resolve()) for k, v in files.items()},
        "exclude": list(spec.get("exclude") or []),
        "sizes": sizes,
        "validation": validation,
        "train_subset": datamodule.train_subset,
        "matches_published": matches,
    }


__all__ = ["KNOWN_PROTOCOLS", "protocol_record"]
