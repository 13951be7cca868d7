# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""irsam's Hydra configs. Installed, this folder is the package ``irsam.conf`` (pyproject.toml
``[tool.setuptools] package-dir``), which the installed commands read as ``pkg://irsam.conf``
(irsam/tasks/cli.py); the repository's scripts read it as the folder ``conf/``."""
