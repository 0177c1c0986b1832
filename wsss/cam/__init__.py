"""Step 1 of the image-level pipeline: the CAM classifier and its class activation maps.

* :mod:`wsss.cam.classifier`: the network (:class:`~wsss.cam.classifier.CAMClassifier`, a ResNet trunk + 1×1 classifier);
* :mod:`wsss.cam.training`: its training on image-level labels (stage ``train_classifier``);
* :mod:`wsss.cam.inference`: loading the trained classifier, multi-scale CAMs, CAM → label map (stage ``make_cam``).
"""
