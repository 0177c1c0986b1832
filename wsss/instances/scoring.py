"""Scoring instance predictions (or pseudo-instances) of a split against its ground-truth instances:
VOC mask mAP_r at 0.5 / 0.75 and COCO AP, masks kept as compressed RLE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wsss.data.reader import DatasetReader, VOCLayoutReader
from wsss.errors import WsssError
from wsss.instances.coco import CocoBuilder, coco_api, decode_mask, encode_mask, instance_results
from wsss.instances.instance_set import InstanceSet


class RLEMasks:
    """A per-image sequence of compressed RLE masks that decodes ``(R, H, W)`` bool on access.

    Lets :func:`wsss.metrics.eval_instance_segmentation_voc` run over a whole split
    without holding every image's full-resolution masks in memory.
    """

    def __init__(self) -> None:
        self.items: list[tuple[list[dict[str, Any]], tuple[int, int]]] = []

    def append(self, masks: np.ndarray) -> None:
        masks = np.asarray(masks, dtype=bool)
        self.items.append(([encode_mask(m) for m in masks], tuple(masks.shape[1:])))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> np.ndarray:
        rles, size = self.items[index]
        if not rles:
            return np.zeros((0, *size), dtype=bool)
        return np.stack([decode_mask(r) for r in rles])


class InstanceScorer:
    """Scores instance predictions (or pseudo-instances) of a split against its ground-truth instances.

    ``add`` per image (ground truth from ``dataset.instances``: ``SegmentationObject``
    for VOC layout, the json for COCO); ``record`` gives ``metrics.json``: ``ap50``
    and ``ap75`` (VOC mask mAP_r, percent, chainercv protocol through
    :func:`wsss.metrics.eval_instance_segmentation_voc`), ``AP`` (COCO mask
    AP@[.5:.95], percent, :func:`wsss.metrics.eval_coco`), ``AP_bbox``, per-class
    VOC AP at 0.5, the full COCOeval summaries (``coco_segm``, ``coco_bbox``,
    percent), ``n_images``, ``n_instances`` and the protocol. Masks are kept as RLE.
    """

    def __init__(self, dataset: DatasetReader, protocol: dict[str, Any] | None = None) -> None:
        self.dataset = dataset
        self.class_names = tuple(dataset.class_names)
        gt = dataset.object_folder if isinstance(dataset, VOCLayoutReader) else "json"
        self.protocol = {"split": dataset.split, "gt": gt,
                         "voc_iou_thresholds": [0.5, 0.75], "voc_ap": "VOC2010+ (area under the envelope)",
                         **(protocol or {})}
        self.gt = CocoBuilder(dataset, description=f"ground truth of {self.protocol['split']}")
        self.results: list[dict[str, Any]] = []
        self.pred_masks, self.gt_masks = RLEMasks(), RLEMasks()
        self.pred_labels: list[np.ndarray] = []
        self.pred_scores: list[np.ndarray] = []
        self.gt_labels: list[np.ndarray] = []

    @property
    def n_images(self) -> int:
        return len(self.gt_labels)

    def has_gt(self, name: str) -> bool:
        return bool(self.dataset.has_object_mask(name))

    def add(self, name: str, instances: InstanceSet, boxes: np.ndarray | None = None) -> None:
        """Score image ``name``'s ``instances`` (``boxes (R, 4)`` xyxy from a detector, else the masks' boxes)."""
        gt_masks, gt_labels = self.dataset.instances(name)
        if gt_masks.shape[1:] != instances.masks.shape[1:]:
            raise WsssError(f"{name}: instance masks {instances.masks.shape[1:]} differ from the ground truth "
                            f"{gt_masks.shape[1:]} (H, W)")
        image_id = self.gt.add_image(name, *gt_masks.shape[1:])
        self.gt.add_instances(image_id, InstanceSet(gt_masks, gt_labels, np.ones(len(gt_labels), np.float32)),
                              with_score=False)
        self.results.extend(instance_results(image_id, instances, boxes, self.dataset))
        self.pred_masks.append(instances.masks)
        self.pred_labels.append(np.asarray(instances.labels))
        self.pred_scores.append(np.asarray(instances.scores))
        self.gt_masks.append(gt_masks)
        self.gt_labels.append(np.asarray(gt_labels))

    def ground_truth(self) -> dict[str, Any]:
        """The ground-truth COCO json of the scored images."""
        return self.gt.to_dict()

    # ------------------------------------------------------------------ shards (wsss.shards)
    def state(self) -> dict[str, Any]:
        """Everything :meth:`record` reads, as json: a shard job's, merged by :meth:`merge_states` in the gather."""
        return {"protocol": self.protocol, "class_names": list(self.class_names), "gt": self.ground_truth(),
                "results": self.results,
                "pred_masks": [[rles, list(size)] for rles, size in self.pred_masks.items],
                "gt_masks": [[rles, list(size)] for rles, size in self.gt_masks.items],
                "pred_labels": [v.tolist() for v in self.pred_labels],
                "pred_scores": [v.tolist() for v in self.pred_scores],
                "gt_labels": [v.tolist() for v in self.gt_labels]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "InstanceScorer":
        """A scorer holding ``state`` (one shard's, or :meth:`merge_states` of several); it can :meth:`record`."""
        scorer = cls.__new__(cls)
        scorer.dataset = None
        scorer.class_names = tuple(state["class_names"])
        scorer.protocol = state["protocol"]
        scorer.gt = CocoBuilder(description=state["gt"]["info"]["description"])
        scorer.gt.images, scorer.gt.annotations = state["gt"]["images"], state["gt"]["annotations"]
        scorer.gt.categories = state["gt"]["categories"]
        scorer.results = state["results"]
        scorer.pred_masks, scorer.gt_masks = RLEMasks(), RLEMasks()
        scorer.pred_masks.items = [(rles, tuple(size)) for rles, size in state["pred_masks"]]
        scorer.gt_masks.items = [(rles, tuple(size)) for rles, size in state["gt_masks"]]
        scorer.pred_labels = [np.asarray(v, dtype=np.int64) for v in state["pred_labels"]]
        scorer.pred_scores = [np.asarray(v, dtype=np.float32) for v in state["pred_scores"]]
        scorer.gt_labels = [np.asarray(v, dtype=np.int64) for v in state["gt_labels"]]
        return scorer

    @staticmethod
    def merge_states(states: list[dict[str, Any]], where: str = "") -> dict[str, Any]:
        """The state of the images of all ``states``, in order (ground-truth annotation ids renumbered as one
        scorer numbers them). Protocols and class names must agree."""
        from wsss.instances.coco import merge_coco

        first = states[0]
        for state in states[1:]:
            for key in ("protocol", "class_names"):
                if state[key] != first[key]:
                    raise WsssError(f"{where}: shards disagree on {key} ({first[key]!r} vs {state[key]!r})")
        merged = {"protocol": first["protocol"], "class_names": first["class_names"],
                  "gt": merge_coco([state["gt"] for state in states], where)}
        for key in ("results", "pred_masks", "gt_masks", "pred_labels", "pred_scores", "gt_labels"):
            merged[key] = [item for state in states for item in state[key]]
        return merged

    def record(self) -> dict[str, Any]:
        from wsss.metrics import eval_coco, eval_instance_segmentation_voc

        voc = {t: eval_instance_segmentation_voc(self.pred_masks, self.pred_labels, self.pred_scores,
                                                 self.gt_masks, self.gt_labels, iou_thresh=t)
               for t in (0.5, 0.75)}
        gt_api = coco_api(self.ground_truth())
        segm = {k: v * 100.0 for k, v in eval_coco(gt_api, self.results, "segm").items()}
        bbox = {k: v * 100.0 for k, v in eval_coco(gt_api, self.results, "bbox").items()}
        names = self.class_names
        ap50 = voc[0.5]["ap"]
        return {
            "ap50": voc[0.5]["map"] * 100.0,
            "ap75": voc[0.75]["map"] * 100.0,
            "AP": segm["AP"],
            "AP_bbox": bbox["AP"],
            "per_class_ap50": {names[k]: (float(ap50[k]) * 100.0 if k < len(ap50) else float("nan"))
                               for k in range(1, len(names))},
            "coco_segm": segm,
            "coco_bbox": bbox,
            "n_images": self.n_images,
            "n_instances": len(self.results),
            "protocol": self.protocol,
        }


#: a shard job's instance scorer state (wsss.shards): the gather rebuilds ``metrics_file`` from the merged states
INSTANCE_STATE = "instances.state.json"


def save_instance_state(out_dir: str | Path, scorer: InstanceScorer, metrics_file: str) -> None:
    """``<out_dir>/instances.state.json``: ``scorer``'s state and the name of the metrics file it scores into."""
    from wsss.io import save_json

    save_json(Path(out_dir) / INSTANCE_STATE, {**scorer.state(), "metrics_file": metrics_file})


def write_instance_metrics(out_dir: str | Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics file named in a (merged) instance state, scored from it; the record, or None without images."""
    from wsss.io import save_json

    scorer = InstanceScorer.from_state(state)
    if not scorer.n_images:
        return None
    record = scorer.record()
    save_json(Path(out_dir) / state["metrics_file"], record)
    return record
