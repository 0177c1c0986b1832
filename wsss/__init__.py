"""wsss: weakly-supervised semantic/instance segmentation pipeline library.

Sub-packages follow the pipeline, each step's network beside its training and
inference: ``data`` (dataset readers behind the ``DatasetReader`` protocol, the
embedded ``minivoc`` generator), ``cam`` (classifier, its training, CAMs),
``seeds``, ``affinity`` (AffinityNet, its training, affinities), ``propagation``,
``crf``, ``retrain`` (DeepLab, Mask R-CNN) and ``instances`` (cues, COCO export,
scoring); ``backbone`` is the trunk they share, and ``io``, ``errors``,
``progress``, ``training``, ``metrics``, ``evaluation``, ``pipeline``, ``params``
and ``config`` the plumbing. Stage scripts in ``stages/`` are thin wrappers
around these.
"""

__version__ = "0.1.0"
