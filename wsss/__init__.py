"""wsss: weakly-supervised semantic/instance segmentation pipeline library.

Sub-packages hold one concept each: ``data`` (dataset readers and the embedded
``minivoc`` generator), ``models`` (classifier, AffinityNet), ``seeds``,
``propagation``, ``crf``, ``metrics``, ``io`` and ``progress``. Stage scripts in
``stages/`` are thin wrappers around these.
"""

__version__ = "0.1.0"
