"""Where a target stands: every stage it needs, done / stale / missing, with its mIoU.

The states come from Snakemake itself, not from re-deriving its rules:
``snakemake --summary <target>`` gives each output with its status and plan
(``update pending`` = Snakemake would run that job now), and
``snakemake --rulegraph <target>`` gives the order of the stages. So a stage is

* **missing** — its output does not exist;
* **stale** — its output exists but Snakemake would rerun it (its params
  fingerprint, i.e. config or code, changed; an input is newer; an upstream
  stage reruns; or the output is incomplete);
* **done** — Snakemake would leave it alone.

The mIoU is read from the ``metrics.json`` in the output folder (or in one of its
sub-folders, as ``cam/labels/``), whatever the state.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from wsss.errors import WsssError
from wsss.io import load_json
from wsss.viz.stages import load_metrics

#: friendly wording of Snakemake's summary status column
_STATUS_NOTES = {
    "updated input files": "an input is newer than the output",
    "rule implementation changed": "the rule changed",
    "set of input files changed": "its set of inputs changed",
    "params changed": "its config or code changed (params fingerprint)",
}
_KNOWN_PRODUCTS = ("pseudolabels", "gallery", "deeplab", "maskrcnn", "compare")


@dataclass
class StageState:
    """One output of the target's DAG and where it stands."""

    rule: str
    output: str
    state: str  # done | stale | missing
    note: str
    miou: float | None
    date: str = "-"


def resolve_target(words: Sequence[str]) -> str:
    """``["minivoc_image_pseudolabels"]`` as is; ``["minivoc", "image"]`` → ``minivoc_image_pseudolabels``;
    ``["minivoc", "image", "gallery"]`` → ``minivoc_image_gallery``; a third word that is no product is a
    recipe: ``["minivoc", "point", "a2gnn"]`` → ``minivoc_point_a2gnn_pseudolabels``, and
    ``["minivoc", "point", "a2gnn", "gallery"]`` → ``minivoc_point_a2gnn_gallery``."""
    if len(words) == 1:
        return words[0]
    if len(words) == 2:
        return f"{words[0]}_{words[1]}_pseudolabels"
    if len(words) == 3:
        last = words[2] if words[2] in _KNOWN_PRODUCTS else f"{words[2]}_pseudolabels"
        return f"{words[0]}_{words[1]}_{last}"
    if len(words) == 4 and words[3] in _KNOWN_PRODUCTS:
        return "_".join(words)
    raise WsssError("status: give a target (minivoc_image_pseudolabels) or a dataset and a supervision "
                    f"(minivoc image [recipe] [{'|'.join(_KNOWN_PRODUCTS)}])")


def snakemake_command(args: Sequence[str]) -> list[str]:
    """``python -m snakemake <args>`` with this interpreter (the project's environment)."""
    return [sys.executable, "-m", "snakemake", *args]


def _run_both(commands: Sequence[list[str]], cwd: Path) -> list[str]:
    """Run the commands concurrently; their stdouts, or a one-line error with Snakemake's own message."""
    processes = [subprocess.Popen(c, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in commands]
    outputs = []
    failure = None
    for command, process in zip(commands, processes):
        stdout, stderr = process.communicate()
        if process.returncode != 0 and failure is None:
            lines = [line.strip() for line in stderr.splitlines() if line.strip()]
            useful = [line for line in lines if not line.startswith(("Using workflow specific profile", "Building DAG"))]
            failure = f"{' '.join(command[1:4])} … failed: {(useful or lines or ['no output'])[-1]}"
        outputs.append(stdout)
    if failure:
        raise WsssError(failure)
    return outputs


def parse_summary(text: str) -> list[dict[str, str]]:
    """Rows of ``snakemake --summary`` (tab-separated, header ``output_file date rule … status plan``)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("output_file\t")), None)
    if start is None:
        raise WsssError("snakemake --summary: no summary table in its output")
    header = lines[start].split("\t")
    rows = []
    for line in lines[start + 1:]:
        fields = line.split("\t")
        if len(fields) != len(header):
            continue
        rows.append(dict(zip(header, fields)))
    return rows


def parse_rulegraph(text: str) -> tuple[list[str], dict[str, set[str]]]:
    """Rules of a ``snakemake --rulegraph`` DOT graph in dependency order, and each rule's upstream rules."""
    labels = dict(re.findall(r'^\s*(\d+)\s*\[\s*label\s*=\s*"([^"]+)"', text, flags=re.M))
    upstream: dict[str, set[str]] = {name: set() for name in labels.values()}
    for source, target in re.findall(r"^\s*(\d+)\s*->\s*(\d+)", text, flags=re.M):
        if source in labels and target in labels:
            upstream[labels[target]].add(labels[source])
    order: list[str] = []
    placed: set[str] = set()
    pending = sorted(upstream, key=lambda name: int(next(k for k, v in labels.items() if v == name)), reverse=True)
    while pending:  # Kahn's algorithm; a rule comes after everything it needs
        ready = [name for name in pending if upstream[name] <= placed] or pending[:1]
        for name in ready:
            order.append(name)
            placed.add(name)
            pending.remove(name)
    return order, upstream


def find_metrics(output: str | Path, root: Path) -> float | None:
    """mIoU of the ``metrics.json`` in ``output`` or one level below it (``cam/labels``), if any; None for a
    folder whose metrics are not a label stage's (a Mask R-CNN's ``ap50`` record)."""
    folder = root / output
    if not folder.is_dir():
        return None
    candidates = [folder / "metrics.json", *sorted(folder.glob("*/metrics.json"))]
    for path in candidates:
        if path.is_file():
            if "miou" not in load_json(path):
                return None
            record = load_metrics(path)
            value = record.get("miou") if record else None
            return float(value) if isinstance(value, (int, float)) else None
    return None


def _ancestors(rule: str, upstream: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(upstream.get(rule, ()))
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(upstream.get(name, ()))
    return seen


def collect(target: str, extra_args: Sequence[str] = (), cwd: str | Path = ".") -> list[StageState]:
    """The state of every output the target needs, in pipeline order."""
    root = Path(cwd)
    summary_text, graph_text = _run_both(
        [snakemake_command([target, "--summary", *extra_args]),
         snakemake_command([target, "--rulegraph", "dot", *extra_args])], root)
    rows = parse_summary(summary_text)
    order, upstream = parse_rulegraph(graph_text)
    rank = {name: index for index, name in enumerate(order)}
    pending_rules = {row["rule"] for row in rows if row.get("plan") == "update pending"}
    states = []
    for row in sorted(rows, key=lambda r: (rank.get(r["rule"], len(rank)), r["output_file"])):
        status, plan, rule = row.get("status", ""), row.get("plan", ""), row["rule"]
        if status == "missing":
            state, note = "missing", ""
        elif plan == "update pending":
            state = "stale"
            if status in _STATUS_NOTES:
                note = _STATUS_NOTES[status]
            else:
                reruns = sorted(_ancestors(rule, upstream) & pending_rules, key=lambda n: rank.get(n, 0))
                note = f"upstream {reruns[-1]} reruns" if reruns else "incomplete or forced"
        else:
            state, note = "done", ""
        states.append(StageState(rule, row["output_file"], state, note, find_metrics(row["output_file"], root),
                                 row.get("date", "-")))
    return states


def format_states(target: str, states: Sequence[StageState]) -> str:
    """A plain table: stage, state, mIoU, output, note; and a one-line tally."""
    header = ("stage", "state", "mIoU", "output", "note")
    rows = [(s.rule, s.state, f"{s.miou:.2f}" if s.miou is not None else "-", s.output, s.note) for s in states]
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(5)]

    def line(cells: Sequence[str]) -> str:
        parts = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1]), cells[2].rjust(widths[2]),
                 cells[3].ljust(widths[3]), cells[4]]
        return "  ".join(parts).rstrip()

    counts = {name: sum(s.state == name for s in states) for name in ("done", "stale", "missing")}
    tally = ", ".join(f"{n} {name}" for name, n in counts.items())
    verdict = "up to date" if not counts["stale"] and not counts["missing"] else "would run " + str(
        counts["stale"] + counts["missing"]) + " job(s)"
    return "\n".join([f"{target}: {tally} ({verdict})", line(header), *(line(r) for r in rows)])


def main(argv: Sequence[str] | None = None, cwd: str | Path | None = None) -> int:
    """CLI: ``python -m stages.status TARGET | DATASET SUPERVISION [PRODUCT] [snakemake args…]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[0] + "\n\nusage: python -m stages.status minivoc_image_pseudolabels "
              "[--config KEY=VALUE …]\n       python -m stages.status minivoc point [a2gnn] [pseudolabels|gallery|deeplab|maskrcnn]")
        return 0 if args else 2
    split = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    words, extra = args[:split], args[split:]
    from wsss.config import REPO_ROOT

    try:
        target = resolve_target(words)
        states = collect(target, extra, REPO_ROOT if cwd is None else cwd)
    except WsssError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_states(target, states))
    return 0
