"""The last step: retraining a network on the pseudo-labels, each network beside its training and scoring.

* :mod:`wsss.retrain.deeplab_model` / :mod:`wsss.retrain.deeplab`: DeepLabV3 (semantic; stage ``train_deeplab``);
* :mod:`wsss.retrain.maskrcnn_model` / :mod:`wsss.retrain.maskrcnn`: Mask R-CNN (instances; stage ``train_maskrcnn``);
* :mod:`wsss.retrain.iterative`: the iteration-based, resumable, multi-GPU training loop both share.
"""
