__version__ = "0.1.0"

from .config import ColBERTConfig
from .model import ColBERT, maxsim

__all__ = ["ColBERT", "ColBERTConfig", "maxsim"]
