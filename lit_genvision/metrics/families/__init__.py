"""Metric families: one module each, registering its extractor and metrics on import.

Every module here is imported by :func:`lit_genvision.metrics.registry.load_families` the first
time the registry is read; adding a family (e.g. a CLIP score) is adding a module here that calls
``register_family`` and ``register_metric``.
"""
