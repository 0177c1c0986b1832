"""Structured config schemas (dataclasses), one module per stage plus :mod:`.common`.

Each module stores its schemas in Hydra's ConfigStore at import time; the stage's
primary YAML lists the schema first in its defaults list (``- schema/<stage>``),
so the YAML values are type-checked against it. :func:`wsss.config.register_schemas`
imports them all.
"""
