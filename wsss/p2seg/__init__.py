"""P2Seg (SEEDS_ANATOMY §1.12–1.13): point-supervised instance segmentation with mutual distillation.

* :mod:`wsss.p2seg.targets`: the training targets (centre heatmaps, S2I offsets, affinity labels), the grouping of
  pixels to points by predicted offset, and the instances of one image (one per annotated point);
* :mod:`wsss.p2seg.model`: the network (ResNet trunk, Panoptic-DeepLab-style heads, affinity decoder, I2S);
* :mod:`wsss.p2seg.train`: its training (two rounds: the second on self-refined targets), export and scoring.

Stage: ``train_p2seg`` (``stages/train_p2seg.py``, ``conf/train_p2seg.yaml``, ``conf/p2seg/<dataset>.yaml``).
"""
