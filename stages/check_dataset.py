"""Report every problem of a dataset at once (one line each); exit non-zero when there is any."""

import sys
from pathlib import Path

from wsss.config import stage_main
from wsss.data.check import check_dataset
from wsss.errors import WsssError
from wsss.io import save_json


@stage_main("check_dataset")
def main(cfg) -> None:
    splits = list(cfg.splits)
    report = check_dataset(cfg.dataset, splits, annotations=cfg.annotations, decode=cfg.decode)
    out = Path(cfg.out_dir)
    save_json(out / "report.json", {"dataset": cfg.dataset.name, "root": cfg.dataset.root, "splits": splits,
                                    **report.as_dict()})
    for problem in report.problems:
        print(problem, file=sys.stderr, flush=True)
    print(f"[check_dataset] {cfg.dataset.name} {splits}: {report.counts}", flush=True)
    if report.problems:
        raise WsssError(f"dataset {cfg.dataset.name}: {len(report.problems)} problems (listed above and in {out / 'report.json'})")
    print(f"[check_dataset] {cfg.dataset.name}: no problems", flush=True)


if __name__ == "__main__":
    main()
