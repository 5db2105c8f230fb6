"""Sub-commands of the ``fleet`` CLI, one module per group (see :mod:`fleet.cli`)."""
