"""Data shipped with the package: the default scenario (``default.yaml``, what ``fleet run`` runs
with no argument) and the small derived grid profiles it reads (see the scenario's comments for
the commands that derive them from the public data)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
DEFAULT_SCENARIO = DATA_DIR / "default.yaml"
