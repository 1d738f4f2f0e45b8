"""Retrieval: the Retriever protocol, Search-R1 HTTP client and server, Lucene BM25 and dense backends,
and the embedded default corpus. Heavy backends import lazily."""

from .base import RetrievalError, Retriever, RetrieveTool
from .corpus import CorpusError, Passage, iter_corpus, load_corpus
from .http_client import HttpRetriever
from .index_meta import read_meta
from .indexes import open_index

__all__ = [
    "CorpusError",
    "HttpRetriever",
    "Passage",
    "RetrievalError",
    "RetrieveTool",
    "Retriever",
    "iter_corpus",
    "load_corpus",
    "open_index",
    "read_meta",
]
