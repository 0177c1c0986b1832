"""Weak-shot segmentation (RETAB, SEEDS_ANATOMY §1.9): pixel labels on the base classes, image tags on the novel ones.

* :mod:`wsss.weakshot.folds`: the fold's class sets (PASCAL-5i / COCO-20i), the base/novel image split and its files,
  base/novel mIoU;
* :mod:`wsss.weakshot.boundary`: the boundary network trained on the base images' masks (target, loss, training,
  inference);
* :mod:`wsss.weakshot.walk`: the two-stage random walk gated by the predicted boundaries.
"""
