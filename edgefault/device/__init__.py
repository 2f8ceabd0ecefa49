"""The device side: what runs on the gateway. Runtime, bundle format, feature spec, feature and
sparse-coding wrappers of the C++ core, thresholds and drift monitors. Imports nothing from
training, evaluation or report."""
