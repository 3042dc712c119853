"""Evaluation tools and sample makers for tests and benchmarks (not shipped): the diarization
scores, the search-quality evaluation, and the scripts that regenerate the bundled samples."""
