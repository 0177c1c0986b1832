"""Stage: generate the embedded dataset ``minivoc`` (VOC 2012 layout) into ``out_dir`` (``data/minivoc``).

    python -m stages.make_minivoc                    # 1000 train + 150 val, seed 0
    python -m stages.make_minivoc seed=3 n_train=40 n_val=10 out_dir=data/minivoc_seed3
    python -m stages.make_minivoc dataset=minicoco   # the same images in COCO layout, into data/minicoco

The dataset is built in a hidden sibling folder and moved onto ``out_dir`` when
complete; Hydra's ``out_dir/.hydra/`` (the composed config of this run) is kept.
"""

from __future__ import annotations

import cv2
from omegaconf import OmegaConf

from wsss.config import stage_main
from wsss.data.minivoc import MinivocParams, generate


@stage_main("make_minivoc")
def main(cfg) -> None:
    if cfg.num_threads > 0:
        cv2.setNumThreads(int(cfg.num_threads))
    params = MinivocParams.from_mapping(OmegaConf.to_container(cfg, resolve=True))
    report = generate(cfg.out_dir, n_train=cfg.n_train, n_val=cfg.n_val, seed=cfg.seed, params=params,
                      layout=str(cfg.layout))
    counts = ", ".join(f"{name} {n}" for name, n in report.class_instances.items())
    print(
        f"[make_minivoc] wrote {report.n_train} train + {report.n_val} val images to {report.root} "
        f"({cfg.layout} layout) "
        f"in {report.seconds:.1f}s (seed {report.seed}); instances per class: {counts}",
        flush=True,
    )


if __name__ == "__main__":
    main()
