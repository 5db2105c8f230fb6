"""``python -m fleet``: the same as the ``fleet`` command (useful from a source checkout)."""

import sys

from .cli import main

sys.exit(main())
