"""Elementwise activation functions, each forward beside its backward.

An :class:`Activation` maps pre-activations ``z`` to outputs ``a = f(z)`` and
back-propagates an upstream gradient ``g = dL/da`` to ``dL/dz = g * f'(z)``, and
pushes a tangent ``dz`` (forward mode) to ``da = f'(z) * dz``.
Every derivative here can be written in terms of the output ``a`` alone, so the
network keeps only the outputs of each layer, the forward pass may overwrite
``z`` in place and the backward pass may overwrite ``a`` and ``g`` (no
allocations on the hot path). The tangent reads ``a`` and overwrites ``dz`` only.

``"step"`` (Heaviside: 1 for ``z > 0``, else 0) is piecewise constant: its
derivative is 0 wherever it exists, so backpropagation through a step layer
returns exactly zero gradient for everything below it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dfo.exceptions import lookup

__all__ = ["ACTIVATIONS", "Activation", "get_activation"]


# -- tanh: a = tanh(z), da/dz = 1 - a^2 -------------------------------------------
def _tanh_forward(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.tanh(z, out=out)


def _tanh_backward(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    np.square(a, out=a)
    np.subtract(1.0, a, out=a)
    g *= a
    return g


def _tanh_tangent(a: np.ndarray, dz: np.ndarray) -> np.ndarray:
    slope = np.multiply(a, a)
    np.subtract(1.0, slope, out=slope)  # 1 - a^2, in one temporary
    dz *= slope
    return dz


# -- relu: a = max(z, 0), da/dz = [a > 0] (0 at the kink) -------------------------
def _relu_forward(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(z, 0.0, out=out)


def _relu_backward(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.multiply(g, a > 0.0, out=g)


def _relu_tangent(a: np.ndarray, dz: np.ndarray) -> np.ndarray:
    return np.multiply(dz, a > 0.0, out=dz)


# -- sigmoid: a = 1 / (1 + exp(-z)), da/dz = a (1 - a) -------------------------------
def _sigmoid_forward(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # With e = exp(-|z|) in (0, 1]: a = 1 / (1 + e) for z >= 0 and e / (1 + e) for
    # z < 0. Nothing overflows for any z, and both tails keep full relative accuracy.
    positive = z >= 0.0
    out = np.abs(z, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    denom = out + 1.0
    np.copyto(out, 1.0, where=positive)
    out /= denom
    return out


def _sigmoid_backward(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    g *= a
    np.subtract(1.0, a, out=a)
    g *= a
    return g


def _sigmoid_tangent(a: np.ndarray, dz: np.ndarray) -> np.ndarray:
    slope = np.subtract(1.0, a)
    slope *= a  # a (1 - a), in one temporary
    dz *= slope
    return dz


# -- identity: a = z, da/dz = 1 ---------------------------------------------------
def _identity_forward(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None or out is z:
        return z
    np.copyto(out, z)
    return out


def _identity_backward(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    return g


def _identity_tangent(a: np.ndarray, dz: np.ndarray) -> np.ndarray:
    return dz


# -- step (Heaviside): a = [z > 0], da/dz = 0 --------------------------------------
def _step_forward(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.heaviside(z, 0.0, out=out)


def _step_backward(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    g.fill(0.0)
    return g


def _step_tangent(a: np.ndarray, dz: np.ndarray) -> np.ndarray:
    dz.fill(0.0)
    return dz


@dataclass(frozen=True, eq=False)
class Activation:
    """An elementwise activation: ``forward`` beside ``backward``.

    Attributes
    ----------
    name : str
        Registry name (``"tanh"``, ``"relu"``, ...).
    forward : callable
        ``forward(z, out=None) -> a``; ``out=z`` computes in place.
    backward : callable
        ``backward(a, g) -> g * f'(z)`` from the forward output ``a`` and the
        upstream gradient ``g``. It works in place: both ``a`` and ``g`` may be
        overwritten (the result is usually ``g`` itself), so the caller passes
        arrays it no longer needs.
    tangent : callable
        ``tangent(a, dz) -> f'(z) * dz``, forward mode: the tangent of the output
        from the forward output ``a`` and the tangent ``dz`` of the input. It
        overwrites ``dz`` (the result is ``dz`` itself) and leaves ``a`` intact.
    differentiable : bool
        False when the derivative is zero almost everywhere (``"step"``).
    """

    name: str
    forward: Callable[..., np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray], np.ndarray]
    tangent: Callable[[np.ndarray, np.ndarray], np.ndarray]
    differentiable: bool = True

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Apply the activation (out of place)."""
        return self.forward(np.asarray(z, dtype=np.float64))

    def __reduce__(self) -> tuple[Callable[[str], Activation], tuple[str]]:
        # Pickle by name, so networks ship to worker processes cheaply.
        return get_activation, (self.name,)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("tanh", _tanh_forward, _tanh_backward, _tanh_tangent),
        Activation("relu", _relu_forward, _relu_backward, _relu_tangent),
        Activation("sigmoid", _sigmoid_forward, _sigmoid_backward, _sigmoid_tangent),
        Activation("identity", _identity_forward, _identity_backward, _identity_tangent),
        Activation("step", _step_forward, _step_backward, _step_tangent, differentiable=False),
    )
}


def get_activation(name: str | Activation, what: str = "activation") -> Activation:
    """Look up an activation by name.

    Parameters
    ----------
    name : str or Activation
        One of ``"tanh"``, ``"relu"``, ``"sigmoid"``, ``"identity"``, ``"step"``.
    what : str
        How the option is called in error messages.

    Raises
    ------
    InvalidOptionError
        If the name is unknown; the message lists the valid names.

    Examples
    --------
    >>> get_activation("relu")(np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    if isinstance(name, Activation):
        return name
    return lookup(name, ACTIVATIONS, what)
