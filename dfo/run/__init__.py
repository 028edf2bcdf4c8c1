"""The run layer: :func:`~dfo.run.minimize.minimize` and its evaluation ledger.

:mod:`dfo.run.evaluation` is the one place that calls the objective, counts what it
costs and enforces the budget; :mod:`dfo.run.minimize` is the one run loop, written
over ask/tell.
"""
