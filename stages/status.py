"""Where a target stands, stage by stage: ``python -m stages.status minivoc_image_pseudolabels``.

Prints each stage the target needs as done / stale / missing (Snakemake's own view: ``snakemake
--summary``), with its mIoU from ``metrics.json``. Also ``python -m stages.status minivoc image
[gallery]``; Snakemake arguments may follow (``--config refine_crf="crf.iterations=5"``). Not a Hydra
stage: it runs nothing and writes nothing. See :mod:`wsss.workflow.status`.
"""

import sys

from wsss.workflow.status import main

if __name__ == "__main__":
    sys.exit(main())
