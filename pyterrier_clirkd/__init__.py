__version__ = "0.1.0"

from .config import ColBERTConfig
from .model import ColBERT, maxsim
from .index import ColBERTIndex
from . import datasets, measures
from .datasets import answers
from .translate import MTQueryRewriter

__all__ = ["ColBERT", "ColBERTConfig", "ColBERTIndex", "maxsim", "answers", "datasets", "measures", "MTQueryRewriter"]
