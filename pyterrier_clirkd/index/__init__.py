"""ColBERTIndex: compressed ColBERT token vectors on disk, end-to-end retrieval and re-scoring."""
from .build import IndexInputError
from .codec import ResidualCodec
from .core import ColBERTIndex
from .search import ColBERTRetriever, ColBERTScorer, IndexReader

__all__ = ["ColBERTIndex", "ColBERTRetriever", "ColBERTScorer", "IndexInputError", "IndexReader", "ResidualCodec"]
