"""``python -m experiments``: see :func:`experiments.runner.main`."""

import os

# Render off-screen even for experiments that use pyplot; set before matplotlib is imported.
os.environ.setdefault("MPLBACKEND", "Agg")

from experiments.runner import main  # noqa: E402

raise SystemExit(main())
