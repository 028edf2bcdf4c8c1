"""The from-scratch numpy network: layers, activations, losses and its objective.

Each activation and loss keeps its forward beside its derivative
(:mod:`dfo.nn.activations`, :mod:`dfo.nn.losses`); :class:`~dfo.nn.network.MLP`
(:mod:`dfo.nn.network`) runs them layer by layer, for one parameter vector or a
population; :class:`~dfo.nn.network_objective.NetworkObjective` turns a network and
its data into an :class:`~dfo.objective.Objective`.
"""

from __future__ import annotations

from dfo.nn.network import MLP
from dfo.nn.network_objective import NetworkObjective

__all__ = ["MLP", "NetworkObjective"]
