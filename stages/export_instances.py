"""Instance pseudo-labels: semantic pseudo-labels + instance cues → ``<out_dir>/instances.json`` (COCO format);
with ``model_dir`` (recipe p2seg): the P2Seg network's instances instead, one per annotated point
(:func:`wsss.p2seg.train.p2seg_instances`, the fallback of the model's ``export`` settings).

Also writes ``metrics.json`` (the pseudo-instances scored against the split's
ground-truth instances when it has them: VOC mAP_r at 0.5/0.75, COCO AP) and
``gt.json`` (that ground truth as COCO json).
"""

from pathlib import Path

from wsss.config import stage_main
from wsss.errors import WsssError
from wsss.instances.coco import CocoBuilder
from wsss.instances.cues import make_instances, resolve_cue
from wsss.instances.scoring import InstanceScorer, save_instance_state
from wsss.io import load_label_png, save_json
from wsss.params import InstanceSettings
from wsss.pipeline import open_shard, prepare, require_dir
from wsss.progress import Progress


@stage_main("export_instances")
def main(cfg) -> None:
    device = prepare(cfg)
    dataset, shard = open_shard(cfg, cfg.supervision.annotations)
    labels_dir = require_dir(cfg.labels_dir, "pseudo-label folder")
    cue = resolve_cue(cfg.instances.cue, cfg.supervision.name)
    settings = InstanceSettings(**cfg.instances)
    points_dir = Path(dataset.root) / cfg.supervision.annotations if cue == "points" else None
    network = None
    if cfg.model_dir:
        from wsss.p2seg.train import load_p2seg, p2seg_instances

        if cue != "points":
            raise WsssError(f"model_dir: the P2Seg network makes one instance per point, but the cue is '{cue}'")
        network = load_p2seg(require_dir(cfg.model_dir, "P2Seg network folder") / "model.pt", device)
        cue = "p2seg"
    builder = CocoBuilder(dataset, description=f"{cfg.dataset.name} {cfg.split} instance pseudo-labels "
                                               f"({cfg.supervision.name} supervision, cue {cue})")
    scorer = InstanceScorer(dataset, {"stage": "instances", "cue": cue, "supervision": cfg.supervision.name})
    for image_id in Progress(dataset.ids, desc="export_instances", unit="images"):
        path = labels_dir / f"{image_id}.png"
        semantic = load_label_png(path)
        height, width = dataset.image_size(image_id)
        if semantic.shape != (height, width):
            raise WsssError(f"{path}: size {semantic.shape[1]}x{semantic.shape[0]} differs from its image {width}x{height}")
        if network is not None:
            instances = p2seg_instances(network[0], dataset, points_dir, image_id, device, network[1])
        else:
            instances = make_instances(dataset, image_id, semantic, cue, settings, points_dir)
        builder.add_instances(builder.add_image(image_id, height, width), instances)
        if scorer.has_gt(image_id):
            scorer.add(image_id, instances)
    out = Path(cfg.out_dir)
    data = builder.to_dict()
    save_json(out / "instances.json", data)
    if shard.sharded:
        save_instance_state(out, scorer, "metrics.json")
    print(f"[export_instances] {len(data['annotations'])} instances on {len(data['images'])} images (cue {cue})",
          flush=True)
    if scorer.n_images:
        record = scorer.record()
        save_json(out / "gt.json", scorer.ground_truth())
        save_json(out / "metrics.json", record)
        print(f"[export_instances] pseudo-instances vs ground truth: mAP50 {record['ap50']:.2f}, "
              f"mAP75 {record['ap75']:.2f}, COCO AP {record['AP']:.2f}", flush=True)


if __name__ == "__main__":
    main()
