"""The noise level of a function, and finite-difference steps that respect it.

**Noise level** (Moré & Wild, 2011, "Estimating computational noise", the ECnoise
algorithm). Evaluate ``f`` at ``m + 1`` equally spaced points ``x + (i - m/2) h p``
along a random unit direction ``p`` and build the difference table
``Delta^k f_i``. For a smooth ``f`` the differences of order ``k`` shrink like
``h^k``; for noise of standard deviation ``sigma`` they settle at
``E[(Delta^k f)^2] = binom(2k, k) sigma^2``. So
``sigma_k = sqrt(gamma_k mean_i (Delta^k f_i)^2)``, ``gamma_k = (k!)^2 / (2k)!``,
is the noise level at the first order ``k`` whose differences change sign and
where ``sigma_k, sigma_{k+1}, sigma_{k+2}`` agree within a factor 4. Too many
zero first differences mean ``h`` is too small for the function's resolution
(``h`` is multiplied by 100 and the table redone); a monotone spread of values
above 10% of their size (Moré & Wild test the spread alone, which refuses every
table of a noisy function near the value 0), or no agreement, means ``h`` is too
large (or there is no noise at that scale): ``h`` is divided by 100. After
``max_tries`` tables without an estimate, :class:`NoiseEstimate` says
``reliable=False``.

**Step** (Moré & Wild, 2012, "Estimating derivatives of noisy simulations"). With
noise ``eps_f`` and second derivative ``mu`` along ``p``, the forward-difference
step minimizing the expected squared error ``(mu h / 2)^2 + 2 eps_f^2 / h^2`` is
``h = 8**(1/4) sqrt(eps_f / mu)``; the central-difference step
``h = (3 eps_f / mu)**(1/3)`` uses ``mu`` in place of the third derivative. ``mu``
comes from a second difference at ``h_a = eps_f**(1/4)``, accepted when it stands
out of the noise (``|Delta^2| >= 100 eps_f``) and the values change by less than
10%; otherwise once more at ``h_b = (eps_f / mu_a)**(1/4)``; otherwise ``mu = 1``.

:class:`NoiseProbe` runs both stages as ask/tell rounds (for an optimizer's first
iterations); :func:`estimate_noise` drives it on a function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from dfo.exceptions import InvalidOptionError
from dfo.objective import Objective, as_objective, check_point

__all__ = ["NoiseEstimate", "NoiseProbe", "ecnoise", "estimate_noise", "noise_aware_step"]

#: what an ECnoise table says (``inform`` in Moré & Wild's code)
_DETECTED, _H_TOO_SMALL, _H_TOO_LARGE = 1, 2, 3


class NoiseEstimate(NamedTuple):
    """What :func:`estimate_noise` returns.

    Attributes
    ----------
    level : float
        The estimated standard deviation of the noise, ``eps_f``. When the
        estimate is not reliable: ``eps * max(1, |f(x)|)``, the rounding error of a
        noise-free function.
    reliable : bool
        Whether a difference table detected the noise (False: no table settled).
    message : str
        What the last table showed.
    h : float
        The spacing of the last table.
    nfev : int
        Evaluations spent.
    """

    level: float
    reliable: bool
    message: str
    h: float
    nfev: int

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what a :class:`dfo.Result` records)."""
        return {k: (float(v) if isinstance(v, float) else v) for k, v in self._asdict().items()}


def ecnoise(values: Any) -> tuple[float, int]:
    """Noise level from values at equally spaced points (one ECnoise table).

    Parameters
    ----------
    values : array_like, shape (m + 1,)
        ``f`` at ``x + (i - m/2) h p`` for ``i = 0, ..., m``; at least 4 values.

    Returns
    -------
    level : float
        The estimated standard deviation of the noise (0 when none was detected).
    inform : int
        1: noise detected; 2: ``h`` too small (half the first differences are 0);
        3: ``h`` too large, or no noise detected at this spacing.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> level, inform = ecnoise(1.0 + 1e-3 * rng.standard_normal(9))
    >>> inform, bool(3e-4 < level < 3e-3)
    (1, True)
    """
    f = np.asarray(values, dtype=np.float64)
    nf = f.size
    if f.ndim != 1 or nf < 4:
        raise InvalidOptionError(f"ecnoise needs at least 4 values in a 1-D array; got {f.shape}")
    fmax, fmin = float(f.max()), float(f.min())
    if not np.isfinite(f).all():
        return 0.0, _H_TOO_LARGE
    # scaled by a power of two (exactly) so that differences and their squares cannot
    # overflow for values near the float64 limit; the levels are scaled back
    exponent = math.frexp(max(abs(fmax), abs(fmin)))[1]
    scaled = np.ldexp(f, -exponent)
    first = np.diff(scaled)
    if (fmax - fmin) > 0.1 * max(abs(fmax), abs(fmin)) and first.min() * first.max() >= 0:
        return 0.0, _H_TOO_LARGE  # the values change a lot, and smoothly
    levels = np.zeros(nf - 1)
    sign_change = np.zeros(nf - 1, dtype=bool)
    gamma = 1.0
    diff = scaled
    for j in range(1, nf):
        diff = np.diff(diff)
        if j == 1 and np.count_nonzero(diff == 0.0) >= nf / 2:
            return 0.0, _H_TOO_SMALL
        sign_change[j - 1] = diff.min() * diff.max() < 0.0
        gamma *= 0.5 * j / (2 * j - 1)  # (j!)^2 / (2j)!
        levels[j - 1] = math.sqrt(gamma * float(np.mean(diff * diff)))
    for k in range(nf - 3):
        window = levels[k : k + 3]
        if window.max() <= 4.0 * window.min() and sign_change[k]:
            return math.ldexp(float(levels[k]), exponent), _DETECTED
    return 0.0, _H_TOO_LARGE


def noise_aware_step(level: float, curvature: float, scheme: str = "forward") -> float:
    """The finite-difference step for noise ``level`` and curvature ``curvature``.

    ``8**(1/4) sqrt(level / curvature)`` (forward) or
    ``(3 level / curvature)**(1/3)`` (central), Moré & Wild (2012).

    Parameters
    ----------
    level : float
        Standard deviation of the noise, ``eps_f``.
    curvature : float
        Second derivative along the step (its absolute value is used).
    scheme : {"forward", "central"}, default "forward"

    Returns
    -------
    float
        The step ``h``.

    Examples
    --------
    >>> round(noise_aware_step(1e-16, 1.0), 10)
    1.68e-08
    """
    mu = max(abs(curvature), np.finfo(np.float64).tiny)
    if scheme == "central":
        return float((3.0 * level / mu) ** (1.0 / 3.0))
    return float(8.0**0.25 * math.sqrt(level / mu))


class NoiseProbe:
    """ECnoise tables, then a curvature estimate, as ask/tell rounds.

    ``ask()`` returns the points of the next round (a table of ``n_points``, or 2
    points for a second difference); ``tell(values)`` takes their values. When
    ``done`` is True, ``estimate`` is the :class:`NoiseEstimate` and ``curvature``
    the second derivative along ``p`` (``with_curvature=False`` skips that stage).

    Parameters
    ----------
    x : ndarray, shape (n,)
        Where to measure.
    rng : numpy.random.Generator
        Draws the direction ``p``.
    h : float, default 1e-2
        Spacing of the first table, in the units of ``x``.
    n_points : int, default 9
        Points per table (``m + 1``).
    max_tries : int, default 3
        Tables before giving up.
    with_curvature : bool, default True
        Also estimate the curvature (for :func:`noise_aware_step`).
    box : dfo.bounds.Box, optional
        Keep every point inside: each round is centred at the point nearest ``x``
        from which it fits, its spacing shrunk if the box is too narrow for it.
    """

    def __init__(
        self,
        x: np.ndarray,
        rng: np.random.Generator,
        *,
        h: float = 1e-2,
        n_points: int = 9,
        max_tries: int = 3,
        with_curvature: bool = True,
        box: Any = None,
    ) -> None:
        if isinstance(h, bool) or not isinstance(h, int | float) or not 0 < h < math.inf:
            raise InvalidOptionError(f"h must be a finite positive number; got {h!r}")
        if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 4:
            raise InvalidOptionError(f"n_points must be an integer >= 4; got {n_points!r}")
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise InvalidOptionError(f"max_tries must be a positive integer; got {max_tries!r}")
        self.x = np.array(x, dtype=np.float64)
        p = rng.standard_normal(self.x.size)
        self.p = p / np.linalg.norm(p)
        self.h = float(h)
        self.n_points = n_points
        self.tries_left = max_tries
        self.with_curvature = with_curvature
        self.box = box
        self.center = self.x  # the middle of the last table (where f0 was measured)
        self.nfev = 0
        self.f0 = math.nan  # the value at x (the middle of the table)
        self.estimate: NoiseEstimate | None = None
        self.curvature = math.nan
        self._second: list[float] = []  # h of the second differences tried, then mu_a
        self.done = False

    def ask(self) -> np.ndarray:
        """The points of the next round, shape ``(k, n)``."""
        if self.estimate is None:
            half = (self.n_points - 1) / 2.0
            self.h = self._fit(self.h * half) / half
            self.center = self._inset(self.x, self.h * half)
            offsets = (np.arange(self.n_points) - half) * self.h
        else:
            h = self._fit(self._curvature_step())
            offsets = np.array([-h, h])
        X = self.center + offsets[:, None] * self.p
        return X if self.box is None else self.box.clip(X)  # clip: rounding only

    def _fit(self, span: float) -> float:
        """``span`` shrunk so that ``+-span * p`` fits in the box."""
        if self.box is None:
            return span
        with np.errstate(divide="ignore"):
            room = 0.5 * (self.box.upper - self.box.lower) / np.abs(self.p)
        return float(min(span, 0.999 * float(np.min(room))))

    def _inset(self, x: np.ndarray, span: float) -> np.ndarray:
        return x if self.box is None else self.box.inset(x, span * np.abs(self.p))

    def _curvature_step(self) -> float:
        assert self.estimate is not None
        if not self._second:
            return self.estimate.level**0.25
        mu_a = self._second[1]
        return (self.estimate.level / max(mu_a, np.finfo(np.float64).tiny)) ** 0.25

    def tell(self, values: Any) -> None:
        """The values at the points of the last :meth:`ask`."""
        values = np.asarray(values, dtype=np.float64)
        self.nfev += values.size
        if self.estimate is None:
            self._tell_table(values)
        else:
            self._tell_curvature(values)

    def _tell_table(self, values: np.ndarray) -> None:
        mid = values[(self.n_points - 1) // 2] if self.n_points % 2 else np.nan
        if math.isfinite(mid):
            self.f0 = float(mid)
        level, inform = ecnoise(values)
        self.tries_left -= 1
        if inform == _DETECTED:
            message = f"noise detected by a difference table of spacing {self.h:.3g}"
            self.estimate = NoiseEstimate(level, True, message, self.h, self.nfev)
        elif self.tries_left == 0:
            why = "too small" if inform == _H_TOO_SMALL else "too large, or no noise"
            message = (
                f"no difference table settled (the last spacing {self.h:.3g} was {why}); "
                "the level given is the rounding error of a noise-free function"
            )
            scale = abs(self.f0) if math.isfinite(self.f0) else 1.0
            fallback = float(np.finfo(np.float64).eps * max(1.0, scale))
            self.estimate = NoiseEstimate(fallback, False, message, self.h, self.nfev)
        else:
            self.h = self.h * 100.0 if inform == _H_TOO_SMALL else self.h / 100.0
            return
        if not (self.with_curvature and math.isfinite(self.f0)):
            self._finish(1.0)

    def _tell_curvature(self, values: np.ndarray) -> None:
        assert self.estimate is not None
        h = self._fit(self._curvature_step())
        eps_f = self.estimate.level
        minus, plus = values.tolist()
        second = plus - 2.0 * self.f0 + minus
        mu = abs(second) / (h * h)
        change = max(abs(plus - self.f0), abs(minus - self.f0))
        size = max(abs(self.f0), abs(plus), abs(minus))
        if math.isfinite(mu) and abs(second) >= 100.0 * eps_f and change <= 0.1 * size:
            self._finish(mu)
        elif not self._second and math.isfinite(mu) and mu > 0.0:
            self._second = [h, mu]  # try once more at h_b = (eps_f / mu_a)**(1/4)
        elif self._second and math.isfinite(mu) and abs(mu - self._second[1]) <= 0.5 * mu:
            self._finish(mu)
        else:
            self._finish(1.0)

    def _finish(self, curvature: float) -> None:
        assert self.estimate is not None
        self.curvature = float(curvature)
        self.estimate = self.estimate._replace(nfev=self.nfev)
        self.done = True


def estimate_noise(
    f: Objective | Callable[..., Any],
    x: Any,
    *,
    h: float = 1e-2,
    n_points: int = 9,
    max_tries: int = 3,
    seed: int | None = 0,
) -> NoiseEstimate:
    """The noise level of ``f`` near ``x`` from a few evaluations (ECnoise).

    Evaluates ``f`` at ``n_points`` equally spaced points along a random unit
    direction through ``x`` (at most ``max_tries`` times, with the spacing
    adjusted between tries), and reads the standard deviation of the noise off
    their difference table; see the module docstring. A stochastic
    :class:`~dfo.Objective` is measured on one realization (the noise that the
    probes of one finite-difference gradient see).

    Parameters
    ----------
    f : Objective or callable
        ``f(x) -> float``.
    x : array_like, shape (n,)
        Where to measure.
    h : float, default 1e-2
        Spacing of the first table.
    n_points : int, default 9
        Points per table.
    max_tries : int, default 3
        Tables at most (so at most ``n_points * max_tries`` evaluations).
    seed : int or None, default 0
        Seeds the direction (and the realization of a stochastic objective).

    Returns
    -------
    NoiseEstimate
        ``level``, ``reliable`` (False when no table detected noise: then
        ``level`` is the rounding error ``eps * max(1, |f(x)|)``), ``message``,
        ``h`` and ``nfev``.

    Raises
    ------
    InvalidOptionError
        For ``h``, ``n_points`` or ``max_tries`` out of range.
    ShapeError, TypeError, ValueError
        For an ``x`` that does not fit ``f``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> est = estimate_noise(lambda x: float(x @ x) + 1e-3 * rng.standard_normal(), np.ones(3))
    >>> est.reliable, bool(0.5e-3 < est.level < 2e-3)
    (True, True)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise InvalidOptionError(f"x must be a non-empty 1-D array; got shape {x.shape}")
    obj = f if isinstance(f, Objective) else as_objective(f, dim=x.size)
    x = check_point(x, obj.dim)
    rng = np.random.default_rng(seed)
    if obj.is_stochastic:
        obj = obj.realization(rng)
    probe = NoiseProbe(x, rng, h=h, n_points=n_points, max_tries=max_tries, with_curvature=False)
    while not probe.done:
        probe.tell(obj.evaluate_batch(probe.ask()))
    assert probe.estimate is not None
    return probe.estimate
