"""Evaluation: leak-safe protocols (blocks cut before windowing, overlap checks), metrics and the
dataset experiments behind `edgefault eval`."""
