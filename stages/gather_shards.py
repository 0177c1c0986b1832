"""The gather of a sharded per-image stage: its shard jobs' folders into the stage's folder (:mod:`wsss.shards`).

    python -m stages.gather_shards shard_root=results/.shards/minivoc/image/psa/crf count=4 \\
        out_dir=results/minivoc/image/psa/crf

The folder is the one an unsharded run writes: the same per-image files (hard links to the shards'), maps
merged in split order, ``metrics.json`` from the shards' summed confusion matrices.
"""

from pathlib import Path

from wsss.config import stage_main
from wsss.shards import gather_shards


@stage_main("gather_shards")
def main(cfg) -> None:
    shard_dirs = [Path(cfg.shard_root) / str(index) for index in range(int(cfg.count))]
    done = gather_shards(shard_dirs, cfg.out_dir)
    print(f"[gather_shards] {done['images']} images from {len(shard_dirs)} shards into {cfg.out_dir}: "
          f"{done['linked']} image files, {done['merged']} merged, {done['shared']} shared", flush=True)


if __name__ == "__main__":
    main()
