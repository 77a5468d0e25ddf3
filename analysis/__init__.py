"""rnnlab.analysis: open stored sweeps lazily with xarray, derive metrics, draw figures.

Not built yet (issue #5). It will import nothing from ``rnnlab.jobs`` except the schema names.
"""
