# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Task logic behind the thin entry points (``train.py``, ``evaluate.py``, ``predict.py``,
``export.py``, ``oneshot.py`` and the installed commands), and the Hydra glue they share
(:mod:`irsam.tasks.runner`)."""
