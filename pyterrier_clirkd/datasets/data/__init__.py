"""Data files shipped with pyterrier-clirkd (see README.md here for their sources and licences)."""
