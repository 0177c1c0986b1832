"""Pseudo-labels from a box-trained Mask R-CNN: the mask of every annotated box → ``<out_dir>``.

Writes ``<id>.png`` (semantic, VOC palette: small boxes on top, background outside the masks), ``metrics.json``
and ``per_image.json`` (semantic, against the split's ground truth), ``instances.json`` (COCO, one instance per
box) with ``instance_metrics.json`` (VOC mAP_r 0.5 / 0.75, COCO AP) and ``gt.json``.
"""

from pathlib import Path

from wsss.config import stage_main
from wsss.data.annotations import read_boxes
from wsss.errors import WsssError
from wsss.instances.coco import CocoBuilder
from wsss.instances.scoring import InstanceScorer, save_instance_state
from wsss.io import save_json
from wsss.pipeline import LabelStageOutput, open_shard, prepare, require_dir
from wsss.progress import Progress
from wsss.retrain.maskrcnn import box_mask_labels, load_maskrcnn, predict_box_masks


@stage_main("segment_boxes")
def main(cfg) -> None:
    device = prepare(cfg)
    if cfg.supervision.name != "box":
        raise WsssError(f"supervision: segment_boxes reads box annotations, got supervision '{cfg.supervision.name}'")
    model_file = require_dir(cfg.model_dir, "Mask R-CNN folder") / "model.pt"
    model, settings = load_maskrcnn(model_file, device)
    dataset, shard = open_shard(cfg, cfg.supervision.annotations)
    out = Path(cfg.out_dir)
    protocol = {"stage": "boxmasks", "model": str(model_file), "supervision": cfg.supervision.name,
                "mask_threshold": cfg.mask_threshold}
    output = LabelStageOutput(out, dataset, protocol, shard=shard)
    builder = CocoBuilder(dataset, description=f"{cfg.dataset.name} {cfg.split}: masks of the annotated boxes by "
                                               f"{model_file}")
    scorer = InstanceScorer(dataset, protocol)
    filled = boxes_seen = 0
    for image_id in Progress(dataset.ids, desc="segment_boxes", unit="images"):
        image = dataset.load_image(image_id)
        boxes = read_boxes(dataset, image_id)
        probs = predict_box_masks(model, image, boxes, device, settings.min_size_test)
        instances, semantic, empty = box_mask_labels(probs, boxes, cfg.mask_threshold)
        filled, boxes_seen = filled + empty, boxes_seen + len(boxes)
        output.add(image_id, semantic)
        builder.add_instances(builder.add_image(image_id, *semantic.shape), instances)
        if scorer.has_gt(image_id):
            scorer.add(image_id, instances)
    save_json(out / "instances.json", builder.to_dict())
    print(f"[segment_boxes] {boxes_seen} boxes, {filled} with no pixel above {cfg.mask_threshold} (filled box)",
          flush=True)
    output.finish({"boxes": boxes_seen, "filled_boxes": filled})
    if shard.sharded:
        save_instance_state(out, scorer, "instance_metrics.json")
    if scorer.n_images:
        record = scorer.record()
        save_json(out / "gt.json", scorer.ground_truth())
        save_json(out / "instance_metrics.json", record)
        print(f"[segment_boxes] instances vs ground truth: mAP50 {record['ap50']:.2f}, mAP75 {record['ap75']:.2f}, "
              f"COCO AP {record['AP']:.2f}", flush=True)


if __name__ == "__main__":
    main()
