"""Hydra configuration: structured schemas, composition, hashing and the stage entry point.

Every stage has a primary config ``conf/<stage>.yaml`` whose defaults list starts
with its structured schema (a dataclass in :mod:`wsss.schemas`), so a wrong type,
an unknown key or a missing mandatory value is an error before any work starts.

The same composition runs in three places: a stage run by hand
(``python -m stages.<stage> key=value``), a stage run by Snakemake, and the
Snakefile at DAG-build time (:func:`compose`), which hashes the composed config
and the stage's source (:func:`stage_fingerprint`) into ``params:`` so that an
edit of a YAML file, an override or the code reruns exactly that stage and what
follows it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from wsss import faults
from wsss.errors import WsssError

REPO_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = REPO_ROOT / "conf"
_LOCAL_PACKAGES = ("wsss", "stages", "kernels")


@functools.cache
def register_schemas() -> None:
    """Import every module of :mod:`wsss.schemas`; each stores its dataclasses in Hydra's ConfigStore."""
    import wsss.schemas as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"wsss.schemas.{info.name}")


def _describe(exc: BaseException, before: str = "") -> str:
    """One line for one exception: its message's meaningful lines, with the file and line of a YAML error,
    the key of an OmegaConf error and the options Hydra lists for an unknown group choice."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.name}: line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = exc.problem or exc.context or type(exc).__name__
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        return f"malformed YAML: {where}{what}{context}"
    parts: list[str] = []
    options: list[str] = []
    collecting = None
    for raw in str(exc).splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("Config search path:"):
            break
        if line.startswith(("Set the environment variable HYDRA_FULL_ERROR", "object_type=", "full_key:",
                            "reference_type=", "To append to your", "See https://hydra.cc")):
            continue
        if "$VALUE" in line or "$KEY" in line or line == "None":  # OmegaConf's unformatted message templates
            continue
        if line.startswith("Available options in"):
            collecting = options
            continue
        if collecting is not None and raw.startswith(("\t", " ")):
            collecting.append(line)
            continue
        collecting = None
        parts.append(line.rstrip("."))
    if not parts:
        return ""
    text = ": ".join(parts)
    if options:
        text += f" (available: {', '.join(options)})"
    key = getattr(exc, "full_key", None)
    if key and not any(f"'{key}'" in t or f" {key}=" in t for t in (text, before)):
        text = f"key '{key}': {text}"
    if not isinstance(exc, (OmegaConfBaseException,)) and type(exc).__module__.split(".")[0] not in ("hydra", "omegaconf"):
        text = f"{type(exc).__name__}: {text}"
    return text


def _config_error(stage: str, exc: BaseException) -> WsssError:
    """One line ``config <stage>: <what>: <cause>...`` from a composition error and the chain of its causes."""
    if isinstance(exc, MissingMandatoryValue):
        key = getattr(exc, "full_key", "") or "?"
        return WsssError(
            f"config {stage}: missing value for '{key}': set it in conf/, on the stage command line ({key}=...) "
            f"or for Snakemake with --config overrides=\"{key}=...\""
        )
    pieces: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        piece = _describe(current, ": ".join(pieces))
        if piece and not any(piece in earlier for earlier in pieces):
            pieces.append(piece)
        current = current.__cause__ or current.__context__
    return WsssError(f"config {stage}: " + (": ".join(pieces) or type(exc).__name__))


def compose(stage: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/<stage>.yaml`` with ``overrides`` exactly as the stage will see it.

    Every value is resolved, so a missing mandatory value or a bad interpolation
    raises :class:`WsssError` naming the key. The ``hydra`` node is dropped.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_schemas()
    if not (CONF_DIR / f"{stage}.yaml").is_file():
        raise WsssError(f"conf/{stage}.yaml: no such stage config")
    try:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = hydra_compose(config_name=stage, overrides=list(overrides))
        OmegaConf.resolve(cfg)
        OmegaConf.to_container(cfg, throw_on_missing=True)
    except WsssError:
        raise
    except (OmegaConfBaseException, Exception) as exc:  # Hydra raises several types
        raise _config_error(stage, exc) from None
    finally:
        GlobalHydra.instance().clear()
    return cfg


#: top-level keys that change how fast a stage runs, never what it computes: a training checkpoint written
#: with other values of them is still valid (``--cores`` sets ``num_threads``; ``decode_cache_mb``: the
#: training stages' in-memory cache of decoded images)
RUNTIME_ONLY_KEYS = ("num_threads", "decode_cache_mb")


def config_hash(cfg: DictConfig, leave_out: Sequence[str] = ()) -> str:
    """SHA-256 (16 hex digits) of the resolved config as sorted YAML.

    ``supervision.recipe`` (which recipe the supervision's plain targets mean) is left out: switching the
    default recipe must not rerun a stage whose config is otherwise the same; so is ``supervision.fold`` of every
    supervision but ``weakshot`` (no other reads it: ``--config overrides="supervision.fold=2"`` reruns the
    weak-shot stages only). ``leave_out``: further top-level keys to leave out.
    """
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)  # type: ignore[union-attr]
    for key in leave_out:
        container.pop(key, None)  # type: ignore[union-attr]
    supervision = container.get("supervision")  # type: ignore[union-attr]
    if isinstance(supervision, dict):
        supervision.pop("recipe", None)
        if supervision.get("name") != "weakshot":
            supervision.pop("fold", None)
    text = OmegaConf.to_yaml(OmegaConf.create(container), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_fingerprint(cfg: DictConfig) -> str:
    """The config fingerprint a training checkpoint records: :func:`config_hash` without
    :data:`RUNTIME_ONLY_KEYS`, so a rerun with another ``--cores`` resumes instead of starting afresh."""
    return config_hash(cfg, leave_out=RUNTIME_ONLY_KEYS)


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] not in _LOCAL_PACKAGES:
        return None
    base = REPO_ROOT.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


@functools.cache
def _imports_of(path: Path, module: str) -> tuple[str, ...]:
    """The names ``module`` (the file ``path``) imports; parsed once per process (every stage's closure shares
    most files, and Snakemake asks for each stage while it plans)."""
    return tuple(_parse_imports(path, module))


def _parse_imports(path: Path, module: str) -> Iterable[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base = ".".join(base_parts[: len(base_parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield target
            for alias in node.names:
                yield f"{target}.{alias.name}"


@functools.cache
def _imported_modules(module: str) -> dict[str, Path]:
    """Project module name -> file, for ``module`` and every project module it imports, transitively
    (static ``import`` analysis; package ``__init__`` files included, as they run on import)."""
    seen: dict[str, Path] = {}
    stack = [module]
    while stack:
        name = stack.pop()
        # a dotted name may be a module or an attribute of one: walk up until a file is found
        probe = name
        path = None
        while probe and path is None:
            path = _module_file(probe)
            if path is None:
                probe = probe.rpartition(".")[0]
        if path is None or probe in seen:
            continue
        seen[probe] = path
        parent = probe.rpartition(".")[0]
        while parent:  # package __init__ files run on import too
            stack.append(parent)
            parent = parent.rpartition(".")[0]
        stack.extend(_imports_of(path, probe))
    return seen


def imports_kernels(module: str) -> bool:
    """Whether ``module`` imports (transitively, statically) a module of the ``kernels`` package."""
    return any(name.split(".")[0] == "kernels" for name in _imported_modules(module))


def source_closure(module: str) -> list[Path]:
    """Files of ``module`` and every project module it imports, transitively (static ``import`` analysis).

    Kernel C++/CUDA sources are included when any ``kernels`` module is (:func:`imports_kernels`).
    """
    files = set(_imported_modules(module).values())
    if imports_kernels(module):
        csrc = REPO_ROOT / "kernels" / "csrc"
        files.update(p for p in csrc.glob("*") if p.suffix in {".cpp", ".cu", ".h", ".cuh"})
    return sorted(files)


@functools.cache
def source_hash(module: str) -> str:
    """SHA-256 (16 hex digits) over the contents of :func:`source_closure` of ``module``."""
    digest = hashlib.sha256()
    for path in source_closure(module):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def stage_fingerprint(stage: str, overrides: Sequence[str] = (), cfg: DictConfig | None = None) -> str:
    """``<config hash>-<source hash>`` of a stage: changes exactly when its output may change.

    ``cfg``: the stage's config already composed from ``overrides`` (saves composing it again).
    """
    composed = cfg if cfg is not None else compose(stage, overrides)
    return f"{config_hash(composed)}-{source_hash(f'stages.{stage}')}"


def _save_run_config(cfg: DictConfig) -> None:
    """``<out_dir>/.hydra/config.yaml`` (the composed config) and ``overrides.yaml`` (the command line), as
    Hydra's ``output_subdir`` would, but through :mod:`wsss.io`'s atomic writes (one-line errors)."""
    from hydra.core.hydra_config import HydraConfig

    from wsss.io import atomic_path

    out_dir = cfg.get("out_dir") if "out_dir" in cfg else None
    if not out_dir:
        return
    folder = Path(str(out_dir)) / ".hydra"
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    for name, text in (("config.yaml", OmegaConf.to_yaml(cfg)), ("overrides.yaml", OmegaConf.to_yaml(overrides))):
        with atomic_path(folder / name) as tmp:
            tmp.write_text(text)


def _validate_command_line(config_name: str, args: Sequence[str]) -> None:
    """Compose the stage's config from its command line first, so that a bad override or config file ends
    in one line (``error: config <stage>: ...``, exit 1) instead of Hydra's multi-line report or traceback.
    Command lines with Hydra flags (``--cfg``, ``-m``, ...) are left to Hydra."""
    if any(arg.startswith("-") for arg in args):
        return
    overrides = [arg for arg in args if not arg.lstrip("+~").startswith("hydra")]
    try:
        compose(config_name, overrides)
    except WsssError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def stage_main(config_name: str) -> Callable[[Callable[[DictConfig], None]], Callable[[], None]]:
    """Decorator turning ``fn(cfg)`` into a Hydra CLI entry point for ``conf/<config_name>.yaml``.

    A :class:`WsssError` raised by the stage prints ``error: <message>`` (one line)
    to stderr and exits with status 1.
    """

    def decorate(fn: Callable[[DictConfig], None]) -> Callable[[], None]:
        def task(cfg: DictConfig) -> None:
            try:
                OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
            except OmegaConfBaseException as exc:
                print(f"error: {_config_error(config_name, exc)}", file=sys.stderr, flush=True)
                sys.exit(1)
            try:
                faults.start(config_name, cfg.get("out_dir"))
                _save_run_config(cfg)
                fn(cfg)
                faults.finish()
            except WsssError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                sys.exit(1)

        @functools.wraps(fn)
        def main() -> None:
            import hydra

            register_schemas()
            _validate_command_line(config_name, sys.argv[1:])
            hydra.main(version_base=None, config_path=str(CONF_DIR), config_name=config_name)(task)()

        return main

    return decorate
