"""Instance pseudo-labels (the last step before Mask R-CNN retraining), one concept per module:

* :mod:`wsss.instances.instance_set`: :class:`~wsss.instances.instance_set.InstanceSet`, one image's instances;
* :mod:`wsss.instances.cues`: semantic pseudo-labels + the supervision's instance cue (boxes, points,
  connected components) → instances, and their scores;
* :mod:`wsss.instances.coco`: COCO json export (categories, RLE masks, image ids, ground-truth json);
* :mod:`wsss.instances.scoring`: :class:`~wsss.instances.scoring.InstanceScorer` (VOC mAP_r, COCO AP).
"""
