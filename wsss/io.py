"""Artifact I/O: every write goes to a temporary name in the same folder, then
an atomic rename, so a killed stage never leaves a half-written file.

Label maps are VOC palette PNGs (values 0..20, 255 = ignore); score maps are
``.npy`` arrays; metrics and small records are JSON.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

from wsss import faults
from wsss.errors import WsssError

IGNORE_INDEX = 255
_UMASK = os.umask(0)
os.umask(_UMASK)


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map as a flat 768-long ``[r, g, b, ...]`` list (index 255 = (224, 224, 192))."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette.extend((r, g, b))
    return palette


_PALETTE = voc_palette()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary keeps ``path``'s suffix so writers that pick a format by
    extension (PIL, numpy) behave. On an exception the temporary is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; artifacts get the usual permissions
    try:
        yield tmp
        faults.crash_point("before_rename", path)
        os.replace(tmp, path)
        faults.crash_point("after_rename", path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in _WRITE_ERRNOS:
            raise _write_error(path, exc) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: errors of the filesystem, not of the data: a full disk, a quota, a read-only mount, no permission
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _write_error(path: Path, exc: OSError) -> WsssError:
    reason = exc.strerror or str(exc)
    return WsssError(f"{path.parent}: cannot write {path.name}: {reason} (nothing was left half-written)")


def save_label_png(path: str | os.PathLike, label: np.ndarray) -> None:
    """Write an ``H×W`` integer label map (0..20 or 255) as a VOC palette PNG."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"{path}: label map must be 2-D, got shape {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f"{path}: label values must lie in 0..255")
    image = Image.fromarray(label.astype(np.uint8), mode="P")
    image.putpalette(_PALETTE)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def load_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label PNG (palette or greyscale) as an ``H×W`` uint8 array of indices."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise WsssError(f"{path}: label PNG must be palette (P) or greyscale (L), got mode {image.mode}")
            return np.array(image, dtype=np.uint8)
    except FileNotFoundError:
        raise WsssError(f"{path}: file not found") from None
    except Image.DecompressionBombError as exc:
        raise WsssError(f"{path}: label PNG too large to decode ({exc.args[0].split(',')[0]})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # PIL's errors for a damaged file
        raise WsssError(f"{path}: unreadable PNG ({exc})") from None


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one array as ``.npy`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.asarray(array), allow_pickle=False)


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """Read a ``.npy`` array written by :func:`save_npy` (no pickles). A score map must be finite: NaN or inf
    values (a diverged model upstream, a damaged file) are a one-line :class:`WsssError` naming the file."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise WsssError(f"{path}: file not found") from None
    except (ValueError, OSError, EOFError) as exc:
        raise WsssError(f"{path}: unreadable .npy ({exc})") from None
    if np.issubdtype(array.dtype, np.floating) and array.size and not np.isfinite(array).all():
        bad = int(array.size - np.isfinite(array).sum())
        raise WsssError(f"{path}: {bad} non-finite values (NaN or inf) in the array")
    return array


def save_json(path: str | os.PathLike, record: Any) -> None:
    """Write ``record`` as indented JSON atomically (NaN written as null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and value != value:
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean(record), indent=2, sort_keys=False) + "\n")


def save_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` atomically (a temporary name, then renamed)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def load_text(path: str | os.PathLike, what: str = "file") -> str:
    """Read a text file; missing or unreadable → one-line :class:`WsssError` ``"<path>: <what> not found"``
    or ``"<path>: unreadable <what> (<reason>)"``."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise WsssError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WsssError(f"{path}: unreadable {what} ({exc})") from None


def load_json(path: str | os.PathLike) -> Any:
    """Read JSON, turning a missing or malformed file into a one-line :class:`WsssError`."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise WsssError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise WsssError(f"{path}: malformed JSON (line {exc.lineno}: {exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise WsssError(f"{path}: malformed JSON (not UTF-8 text: byte {exc.start})") from None
    except RecursionError:
        raise WsssError(f"{path}: malformed JSON (nested too deeply)") from None
    except OSError as exc:
        raise WsssError(f"{path}: unreadable JSON ({exc})") from None


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` through a temporary name; the same object gives the same bytes.

    Written through a file handle: given a path, torch names the archive's top folder after the file, here
    the random temporary name, so no two saves of the same weights would be byte-identical.
    """
    import torch

    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as handle:
                torch.save(obj, handle)
        except RuntimeError as exc:  # torch reports a failed write (a full disk) as a RuntimeError
            if "write" not in str(exc).lower():
                raise
            tmp.unlink(missing_ok=True)
            raise WsssError(f"{Path(path).parent}: cannot write {Path(path).name}: "
                            f"{str(exc).strip().splitlines()[0]} (nothing was left half-written)") from None


def load_torch(path: str | os.PathLike, what: str, required: tuple[str, ...] = ()) -> Any:
    """``torch.load`` of a model file written by a stage; missing, truncated or corrupt files and ones lacking
    a ``required`` key give a one-line :class:`WsssError` naming the file (``what``: e.g. ``"classifier"``)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WsssError(f"{path}: {what} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # RuntimeError, UnpicklingError, EOFError, ...: a truncated or foreign file
        text = str(exc).strip().splitlines()
        first = text[0].split(". ")[0].rstrip(".") if text else ""  # torch appends paragraphs of advice
        reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        raise WsssError(f"{path}: unreadable {what} file, truncated or corrupt ({reason}); rerun the stage that "
                        f"writes it") from None
    missing = [key for key in required if not isinstance(state, dict) or key not in state]
    if missing:
        raise WsssError(f"{path}: not a {what} file (no '{missing[0]}')")
    weights = state.get("state_dict") if isinstance(state, dict) else None
    if isinstance(weights, dict):
        for name, tensor in weights.items():
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise WsssError(f"{path}: {what} weight '{name}' holds NaN or inf (training diverged?)")
    return state
