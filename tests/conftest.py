"""Test configuration: property tests are derandomized, so every run tries the same examples."""

import signal

from hypothesis import settings

settings.register_profile("dfo", derandomize=True, database=None, deadline=None)
settings.load_profile("dfo")

# A command started in the background of a non-interactive shell inherits SIGINT
# ignored, and Python then installs no KeyboardInterrupt handler. The Ctrl-C tests
# (in this process and in the children it starts) need Ctrl-C delivered as usual.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
