"""Test configuration: property tests are derandomized, so every run tries the same examples."""

from hypothesis import settings

settings.register_profile("dfo", derandomize=True, database=None, deadline=None)
settings.load_profile("dfo")


def told(opt, grads):
    """What a hand-driven ask/tell loop tells besides the values, from the gradients.

    Gradient methods get the gradients, forward-mode methods the directional
    derivatives along ``opt.directions()``, the others nothing.
    """
    import numpy as np

    if opt.needs_gradient:
        return grads
    if opt.needs_jvp:
        return np.einsum("ij,ij->i", grads, opt.directions())
    return None


def needs_derivatives(method):
    """Whether ``method`` needs an objective with a gradient (or forward mode)."""
    from dfo.optimizers import get_method

    cls = get_method(method)
    return cls.needs_gradient or cls.needs_jvp
