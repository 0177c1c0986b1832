"""Stage e: propagate the seeds / CAMs of a supervision with the chosen propagator (conf/propagation/<name>.yaml:
cam_walk | random_walk | a2gnn | apro; what each needs: wsss.propagation.catalog)."""

from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from wsss.config import stage_main
from wsss.errors import WsssError
from wsss.params import CAM_SOURCES
from wsss.io import load_label_png, load_npy, save_json, save_npy
from wsss.pipeline import LabelStageOutput, fold_of, load_keys, open_shard, prepare, require_dir
from wsss.progress import Progress
from wsss.propagation.catalog import PROPAGATORS
from wsss.propagation.run import Propagator, propagation_input
from wsss.weakshot.boundary import load_boundary


@stage_main("propagate")
def main(cfg) -> None:
    device = prepare(cfg)
    kind = cfg.supervision.name
    if cfg.cam not in CAM_SOURCES:
        raise WsssError(f"cam: must be one of {', '.join(CAM_SOURCES)}, got '{cfg.cam}'")
    use_cam = cfg.cam != "none"
    if kind in ("image", "weakshot") and not use_cam:
        raise WsssError(f"cam=none: {kind} supervision needs the CAMs (CAM-free runs are for point, scribble, box)")
    node = OmegaConf.to_container(cfg.propagation, resolve=True)
    needs = PROPAGATORS.get(str(node["name"]))
    affinity_dir = cfg.affinity_dir if needs is not None and needs.affinity else None
    propagator = Propagator(node, kind, use_cam, affinity_dir, device, cfg.seed)
    boundary_dir = None
    if needs is not None and needs.boundary:
        if not cfg.boundary_dir:
            raise WsssError(f"boundary_dir: propagation={node['name']} needs train_boundary's folder (boundary_dir=...)")
        boundary_dir = require_dir(cfg.boundary_dir, "boundary folder")
    dataset, shard = open_shard(cfg, annotations=cfg.supervision.annotations if kind == "box" else "Annotations")
    seeds_dir = require_dir(cfg.seeds_dir, "seeds folder")
    cam_dir = require_dir(cfg.cam_dir, "CAM folder") if use_cam else None
    cam_keys = load_keys(cam_dir) if cam_dir is not None else {}
    out = Path(cfg.out_dir)
    protocol = {"stage": node["name"], "crf": False, "supervision": kind, "cam": cfg.cam}
    fold = fold_of(cfg)
    output = LabelStageOutput(out, dataset, protocol, fold=fold, shard=shard)
    intermediate: dict[str, LabelStageOutput] = {}  # a propagator's earlier stages (boundary_walk: stage1/)
    keys_of: dict[str, list[int]] = {}
    pending: list[tuple[str, str, object]] = []  # (image id, seeds file, input) waiting for a full batch

    def propagate(batch: list[tuple[str, str, object]]) -> list[np.ndarray]:
        try:
            return propagator.batch([data for _, _, data in batch])
        except ValueError as exc:  # a kernel's input check (non-finite affinities, sizes): name the image
            if len(batch) > 1:  # which one: alone, it fails again
                return [propagate([item])[0] for item in batch]
            raise WsssError(f"{batch[0][1]}: propagation of image {batch[0][0]!r} failed: {exc}") from None

    def flush() -> None:
        scores_of = propagate(pending)
        for (image_id, _, data), scores in zip(pending, scores_of):
            save_npy(out / "scores" / f"{image_id}.npy", scores.astype(np.float16))
            keys_of[image_id] = [int(k) for k in data.keys]
            output.add(image_id, data.label(scores))
            for name, earlier in propagator.intermediate.items():
                if name not in intermediate:
                    intermediate[name] = LabelStageOutput(out / name, dataset, {**protocol, "stage": f"{node['name']}.{name}"},
                                                          fold=fold, shard=shard)
                intermediate[name].add(image_id, data.label(earlier))
        pending.clear()

    for image_id in Progress(dataset.ids, desc=f"propagate[{node['name']}]", unit="images"):
        image = dataset.load_image(image_id)
        cam, cam_low = None, None
        if use_cam:
            cam = (load_npy(cam_dir / "highres" / f"{image_id}.npy").astype(np.float32), cam_keys[image_id])
            low_path = cam_dir / f"stride{propagator.cam_stride}" / f"{image_id}.npy"
            if propagator.cam_stride is not None and low_path.is_file():
                cam_low = load_npy(low_path).astype(np.float32)
        seeds_path = seeds_dir / f"{image_id}.png"
        boundary = load_boundary(boundary_dir, image_id) if boundary_dir is not None else None
        data = propagation_input(dataset, kind, cfg.supervision.annotations, image_id, image, load_label_png(seeds_path),
                                 cam, cam_keys.get(image_id), where=str(seeds_path), cam_low=cam_low, boundary=boundary)
        pending.append((image_id, str(seeds_path), data))
        if len(pending) == propagator.batch_size:
            flush()
    if pending:
        flush()
    save_json(out / "keys.json", keys_of)
    for earlier in intermediate.values():
        earlier.finish()
    output.finish()


if __name__ == "__main__":
    main()
