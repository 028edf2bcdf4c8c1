"""A from-scratch numpy multilayer perceptron over one flat parameter vector.

Every parameter of the network lives in one float64 vector ``theta`` so that any
optimizer (finite differences, SPSA, CMA-ES, Nelder-Mead, SGD on backprop
gradients) sees the same ``R^n_params``. Layer ``l`` maps ``a -> f(a @ W + b)``
with ``W`` of shape ``(n_in, n_out)``; ``theta`` holds ``W.ravel()`` then ``b``
for the first layer, then the second layer, and so on.

Backpropagation (and forward mode, :meth:`MLP.jvp`) is written layer by layer, each
operation's forward beside its backward and its tangent: the dense layer here,
activations in :mod:`dfo.nn.activations`, losses in :mod:`dfo.nn.losses`. Its cost
is a small constant times one forward pass, whatever the number of parameters
(``benchmarks/bench_backward.py`` measures it).

:meth:`MLP.population_loss` evaluates ``k`` parameter vectors on the same inputs
in one vectorized pass: the hot path of population and finite-difference methods.

Examples
--------
>>> import numpy as np
>>> net = MLP([4, 8, 3], activation="tanh")
>>> net.n_params
67
>>> theta = net.init_params(np.random.default_rng(0))
>>> X = np.random.default_rng(1).normal(size=(5, 4)); y = np.array([0, 1, 2, 0, 1])
>>> value, grad = net.loss_and_grad(theta, X, y)
>>> grad.shape
(67,)
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np

from dfo.exceptions import ShapeError
from dfo.nn.activations import Activation, get_activation
from dfo.nn.losses import Loss, check_labels, get_loss
from dfo.objective import as_float64

__all__ = ["MLP"]

# Batch length from which the population's first layer is one tall matrix product
# rather than k thin ones (measured with OpenBLAS on x86-64).
_TALL_BATCH = 512

# Population pass: networks are processed in chunks with about this many bytes of
# intermediates, so that each chunk's elementwise passes run in cache (for large
# populations, 3x faster than one pass over everything).
_CHUNK_BYTES = 4 * 2**20

_IGNORE = {"over": "ignore", "invalid": "ignore", "under": "ignore", "divide": "ignore"}


# -- dense layer, on transposed activations (one column per sample) ------------------
#    forward:  z^T = W^T a^T + b          (n_out, batch)
#    backward: dL/dW = a^T^T (dL/dz^T)^T,  dL/db = row sums of dL/dz^T,  dL/da^T = W dL/dz^T
def _dense_forward(at: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    zt = W.T @ at
    zt += b[:, None]
    return zt


def _dense_backward(
    at: np.ndarray,
    W: np.ndarray,
    dzt: np.ndarray,
    dW: np.ndarray,
    db: np.ndarray,
    need_da: bool,
) -> np.ndarray | None:
    """Write dL/dW and dL/db into ``dW``, ``db``; return dL/da^T (or None)."""
    np.matmul(at, dzt.T, out=dW)
    np.sum(dzt, axis=1, out=db)
    return W @ dzt if need_da else None


#    tangent:  dz^T = dW^T a^T + W^T da^T + db   (forward mode; tangents of k directions
#              stacked as (k, n_out, batch); da^T is None for the input, which has none)
def _dense_tangent(
    at: np.ndarray, dat: np.ndarray | None, W: np.ndarray, dW: np.ndarray, db: np.ndarray
) -> np.ndarray:
    dzt = np.matmul(dW.transpose(0, 2, 1), at)
    if dat is not None:
        dzt += np.matmul(W.T, dat)
    dzt += db[:, :, None]
    return dzt


def _check_positive_int(value: Any, name: str) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


class MLP:
    """A fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths including input and output, e.g. ``[64, 16, 10]``.
    activation : str, default "tanh"
        Hidden-layer activation: ``"tanh"``, ``"relu"``, ``"sigmoid"``,
        ``"identity"`` or ``"step"`` (Heaviside; its derivative is 0, so
        backpropagation gets no signal below a step layer).
    output_activation : str, default "identity"
        Activation of the last layer (``"identity"`` gives logits for
        ``loss="cross_entropy"``).

    Attributes
    ----------
    sizes : tuple of int
    activation, output_activation : str
    n_params : int
        Length of the flat parameter vector.
    n_in, n_out : int
        Input and output widths.

    Raises
    ------
    ValueError
        If ``sizes`` has fewer than two entries or a non-positive width.
    InvalidOptionError
        If an activation name is unknown.

    Examples
    --------
    >>> net = MLP([64, 16, 10])
    >>> net.n_params, [W.shape for W, b in net.unflatten(np.zeros(net.n_params))]
    (1210, [(64, 16), (16, 10)])
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "tanh",
        *,
        output_activation: str = "identity",
    ) -> None:
        if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence | np.ndarray):
            raise TypeError(
                f"sizes must be a sequence of layer widths like [64, 16, 10]; got {sizes!r}"
            )
        if len(sizes) < 2:
            raise ValueError(
                f"sizes must list at least the input and output widths; got {list(sizes)}"
            )
        self.sizes = tuple(_check_positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes))
        hidden = get_activation(activation, "activation")
        output = get_activation(output_activation, "output_activation")
        self.activation = hidden.name
        self.output_activation = output.name
        self.n_in = self.sizes[0]
        self.n_out = self.sizes[-1]

        # (W slice, W shape, b slice, activation) per layer, precomputed once.
        layers = []
        offset = 0
        n_layers = len(self.sizes) - 1
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            w = slice(offset, offset + n_in * n_out)
            offset += n_in * n_out
            b = slice(offset, offset + n_out)
            offset += n_out
            act = output if i == n_layers - 1 else hidden
            layers.append((w, (n_in, n_out), b, act))
        self._layers: tuple[tuple[slice, tuple[int, int], slice, Activation], ...] = tuple(layers)
        self.n_params = offset
        # float64 intermediates per candidate and sample in the population pass
        self._width_sum = sum(self.sizes[1:])

    # -- parameters ----------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of weight layers (``len(sizes) - 1``)."""
        return len(self._layers)

    def unflatten(self, theta: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split ``theta`` into ``[(W, b), ...]`` per layer.

        ``W`` has shape ``(n_in, n_out)`` and ``b`` shape ``(n_out,)``. When
        ``theta`` is a float64 array these are views: writing into them changes
        ``theta``.
        """
        theta = self._check_theta(theta)
        return [(theta[w].reshape(shape), theta[b]) for w, shape, b, _ in self._layers]

    def flatten(self, layers: Sequence[tuple[Any, Any]]) -> np.ndarray:
        """Inverse of :meth:`unflatten`: pack ``[(W, b), ...]`` into a flat vector."""
        if len(layers) != self.n_layers:
            raise ShapeError(f"expected {self.n_layers} (W, b) pairs; got {len(layers)}")
        theta = np.empty(self.n_params)
        for i, ((W, b), (w, shape, bs, _)) in enumerate(zip(layers, self._layers, strict=True)):
            W = np.asarray(W, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            if W.shape != shape or b.shape != (shape[1],):
                raise ShapeError(
                    f"layer {i}: expected W of shape {shape} and b of shape ({shape[1]},); "
                    f"got {W.shape} and {b.shape}"
                )
            theta[w] = W.ravel()
            theta[bs] = b
        return theta

    def init_params(self, rng: np.random.Generator | int) -> np.ndarray:
        """Random initial parameters scaled to each layer's activation; biases 0.

        Weights are normal with standard deviation ``sqrt(2 / n_in)`` (He) for
        ``"relu"`` layers and ``sqrt(2 / (n_in + n_out))`` (Glorot/Xavier) for all
        other activations.

        Parameters
        ----------
        rng : numpy.random.Generator or int
            The generator (or a seed for one).
        """
        if isinstance(rng, Integral) and not isinstance(rng, bool):
            rng = np.random.default_rng(int(rng))
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator or an int seed; got {type(rng).__name__}"
            )
        theta = np.zeros(self.n_params)
        for w, (n_in, n_out), _, act in self._layers:
            fan = 0.5 * n_in if act.name == "relu" else 0.5 * (n_in + n_out)
            theta[w] = rng.normal(0.0, np.sqrt(1.0 / fan), size=n_in * n_out)
        return theta

    # -- validation (public entry points only) ------------------------------------
    def _check_theta(self, theta: Any, name: str = "theta") -> np.ndarray:
        try:
            arr = as_float64(theta)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must be a real vector of length {self.n_params}; "
                f"got {type(theta).__name__}"
            ) from exc
        if arr.shape != (self.n_params,):
            raise ShapeError(
                f"{name} must have shape ({self.n_params},) for network {self.sizes}; "
                f"got shape {arr.shape}"
            )
        return arr

    def _check_thetas(self, Thetas: Any) -> np.ndarray:
        try:
            arr = as_float64(Thetas)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"Thetas must be a real array of shape (k, {self.n_params}); "
                f"got {type(Thetas).__name__}"
            ) from exc
        if arr.ndim != 2 or arr.shape[1] != self.n_params:
            raise ShapeError(
                f"Thetas must have shape (k, {self.n_params}) (one parameter vector per row) "
                f"for network {self.sizes}; got shape {arr.shape}"
            )
        return arr

    def check_inputs(self, X: Any, name: str = "X") -> np.ndarray:
        """Return ``X`` as float64 of shape ``(batch, n_in)`` with ``batch >= 1``, or raise.

        Raises
        ------
        TypeError
            If ``X`` is not numeric.
        ShapeError
            If ``X`` is not 2-D with ``n_in`` columns and at least one row.
        ValueError
            If ``X`` contains nan or inf.
        """
        try:
            arr = as_float64(X)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must be a real array of shape (batch, {self.n_in}); "
                f"got {type(X).__name__}"
            ) from exc
        if arr.ndim != 2 or arr.shape[1] != self.n_in or arr.shape[0] < 1:
            raise ShapeError(
                f"{name} must have shape (batch, {self.n_in}) with batch >= 1 for network "
                f"{self.sizes}; got shape {arr.shape}"
            )
        # One cheap reduction; the elementwise check runs only if the sum is not
        # finite (nan/inf present, or a harmless overflow of huge values).
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add.reduce(arr, axis=None)
        if not np.isfinite(total) and not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite; got nan or inf")
        return arr

    def check_targets(self, y: Any, batch: int, loss: str | Loss, name: str = "y") -> np.ndarray:
        """Validate targets for ``loss`` on ``batch`` rows (see :mod:`dfo.nn.losses`)."""
        return get_loss(loss).check_targets(y, batch, self.n_out, name)

    def _check_all(
        self, theta: Any, X: Any, y: Any, loss: str | Loss
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Loss]:
        lossfn = get_loss(loss)
        theta = self._check_theta(theta)
        X = self.check_inputs(X)
        y = lossfn.check_targets(y, X.shape[0], self.n_out)
        return theta, X, y, lossfn

    # -- forward / loss / backward ------------------------------------------------------
    def forward(self, theta: Any, X: Any) -> np.ndarray:
        """Network outputs for the rows of ``X``: shape ``(batch, n_out)``."""
        theta = self._check_theta(theta)
        X = self.check_inputs(X)
        with np.errstate(**_IGNORE):
            return self._forward(theta, X)

    def _forward(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        at = X.T
        for w, shape, b, act in self._layers:
            zt = _dense_forward(at, theta[w].reshape(shape), theta[b])
            at = act.forward(zt, zt)
        return np.ascontiguousarray(at.T)

    def loss(self, theta: Any, X: Any, y: Any, loss: str = "cross_entropy") -> float:
        """Mean loss over the rows of ``X`` (see :mod:`dfo.nn.losses` for the definitions).

        Parameters
        ----------
        theta : array_like, shape (n_params,)
        X : array_like, shape (batch, n_in)
        y : array_like
            Integer labels ``(batch,)`` in ``[0, n_out)`` for ``"cross_entropy"``;
            targets ``(batch, n_out)`` (or ``(batch,)`` if ``n_out == 1``) for ``"mse"``.
        loss : {"cross_entropy", "mse"}

        Returns
        -------
        float
            May be inf or nan for huge or non-finite parameters (without warnings).
        """
        theta, X, y, lossfn = self._check_all(theta, X, y, loss)
        return self._loss(theta, X, y, lossfn)

    def _loss(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, lossfn: Loss) -> float:
        """Unchecked :meth:`loss`; inputs must already be validated."""
        with np.errstate(**_IGNORE):
            at = X.T
            for w, shape, b, act in self._layers:
                zt = _dense_forward(at, theta[w].reshape(shape), theta[b])
                at = act.forward(zt, zt)
            return lossfn.value(at, y)

    def loss_and_grad(
        self, theta: Any, X: Any, y: Any, loss: str = "cross_entropy"
    ) -> tuple[float, np.ndarray]:
        """Loss and its exact gradient by backpropagation.

        Same arguments as :meth:`loss`. Returns ``(value, grad)`` with ``grad`` a new
        float64 array of shape ``(n_params,)`` laid out like ``theta``.
        """
        theta, X, y, lossfn = self._check_all(theta, X, y, loss)
        return self._loss_and_grad(theta, X, y, lossfn)

    def _loss_and_grad(
        self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, lossfn: Loss
    ) -> tuple[float, np.ndarray]:
        """Unchecked :meth:`loss_and_grad`; inputs must already be validated."""
        layers = self._layers
        with np.errstate(**_IGNORE):
            # forward, keeping each layer's output (activations need only their output)
            at = X.T
            acts: list[np.ndarray | None] = [at]
            for w, shape, b, act in layers:
                zt = _dense_forward(at, theta[w].reshape(shape), theta[b])
                at = act.forward(zt, zt)
                acts.append(at)
            value, g = lossfn.value_and_grad(at, y)
            # backward, layer by layer, writing straight into the flat gradient
            grad = np.empty(self.n_params)
            for i in range(len(layers) - 1, -1, -1):
                w, shape, b, act = layers[i]
                g = act.backward(acts[i + 1], g)  # consumes the layer's output
                acts[i + 1] = None
                g = _dense_backward(
                    acts[i], theta[w].reshape(shape), g, grad[w].reshape(shape), grad[b], i > 0
                )
        return value, grad

    # -- forward mode ----------------------------------------------------------------------
    def jvp(
        self, theta: Any, v: Any, X: Any, y: Any, loss: str = "cross_entropy"
    ) -> tuple[float, Any]:
        """Loss and its exact directional derivative along ``v``, by forward mode.

        Tangents are pushed through the network with the forward pass, layer by
        layer (each layer's, activation's and loss's tangent sits beside its forward):
        ``dz = dW^T a + W^T da + db``, ``da = f'(z) dz``, then the loss's tangent.
        One direction costs about two forward passes whatever ``n_params`` is; the
        whole gradient needs ``n_params`` of them (``V = identity``), unlike
        backpropagation's one backward pass.

        Parameters
        ----------
        theta : array_like, shape (n_params,)
        v : array_like, shape (n_params,) or (k, n_params)
            One direction, or ``k`` directions (one per row) on the same forward pass.
        X, y, loss
            As in :meth:`loss`.

        Returns
        -------
        value : float
            The loss at ``theta``.
        dderiv : float or ndarray of shape (k,)
            ``grad(theta) @ v`` (one per row of ``v``).

        Examples
        --------
        >>> net = MLP([3, 4, 2])
        >>> theta = net.init_params(0); v = np.ones(net.n_params)
        >>> X, y = np.ones((2, 3)), np.array([0, 1])
        >>> value, d = net.jvp(theta, v, X, y)
        >>> bool(np.isclose(d, net.loss_and_grad(theta, X, y)[1] @ v))
        True
        """
        theta, X, y, lossfn = self._check_all(theta, X, y, loss)
        try:
            V = as_float64(v)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"v must be a real vector of length {self.n_params}; got {type(v).__name__}"
            ) from exc
        if V.shape[-1:] != (self.n_params,) or V.ndim > 2:
            raise ShapeError(
                f"v must have shape ({self.n_params},) or (k, {self.n_params}) for network "
                f"{self.sizes}; got shape {V.shape}"
            )
        value, dderiv = self._loss_and_jvp(theta, np.atleast_2d(V), X, y, lossfn)
        return value, (float(dderiv[0]) if V.ndim == 1 else dderiv)

    def _loss_and_jvp(
        self, theta: np.ndarray, V: np.ndarray, X: np.ndarray, y: np.ndarray, lossfn: Loss
    ) -> tuple[float, np.ndarray]:
        """Unchecked :meth:`jvp` for directions ``V`` of shape ``(k, n_params)``."""
        k = V.shape[0]
        with np.errstate(**_IGNORE):
            at, dat_in = X.T, None  # the inputs have no tangent
            for w, shape, b, act in self._layers:
                W = theta[w].reshape(shape)
                zt = _dense_forward(at, W, theta[b])
                dat = _dense_tangent(at, dat_in, W, V[:, w].reshape(k, *shape), V[:, b])
                at = act.forward(zt, zt)
                dat_in = dat = act.tangent(at, dat)
            value, dderiv = lossfn.value_and_jvp(at, y, dat)
        return value, np.asarray(dderiv, dtype=np.float64).reshape(k)

    # -- population forward ----------------------------------------------------------------
    def population_loss(
        self,
        Thetas: Any,
        X: Any,
        y: Any,
        loss: str = "cross_entropy",
        *,
        max_bytes: int = 256 * 2**20,
    ) -> np.ndarray:
        """Losses of ``k`` parameter vectors on the same data in one vectorized pass.

        Equal (to rounding, ~1e-15 relative) to ``[self.loss(t, X, y, loss) for t in
        Thetas]``, without a Python-level loop over the networks: each layer is one
        batched matrix product on the stacked ``(k, n_in, n_out)`` weights (views into
        ``Thetas``; for long batches the first layer is one tall product
        ``[W_1 | ... | W_k]^T X^T``), and the elementwise work runs on whole stacks.
        This is the hot path of population and finite-difference methods; for small
        batches, where one call is dominated by per-call overhead, it is several
        times faster than ``k`` calls (``benchmarks/bench_backward.py --population``).

        Parameters
        ----------
        Thetas : array_like, shape (k, n_params)
            One parameter vector per row.
        X, y, loss
            As in :meth:`loss`.
        max_bytes : int, default 256 MiB
            Memory limit for the intermediates. The ``k`` networks are processed in
            chunks of ``c`` rows with ``c * 8 * (batch * sum(sizes[1:]) + n_params)
            <= max_bytes``: an upper bound on the float64 activations (every layer's
            output for every sample) and the weight copy of one chunk. At least one
            network is processed at a time, so a single very large network may exceed it.
            Chunks are also capped at about 4 MiB, which keeps the elementwise passes
            in cache (faster than one pass over a large population).

        Returns
        -------
        ndarray, shape (k,)
        """
        lossfn = get_loss(loss)
        Thetas = self._check_thetas(Thetas)
        X = self.check_inputs(X)
        y = lossfn.check_targets(y, X.shape[0], self.n_out)
        max_bytes = _check_positive_int(max_bytes, "max_bytes")
        return self._population_loss(Thetas, X, y, lossfn, max_bytes)

    def _population_loss(
        self,
        Thetas: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        lossfn: Loss,
        max_bytes: int = 256 * 2**20,
    ) -> np.ndarray:
        """Unchecked :meth:`population_loss`; inputs must already be validated."""
        k = Thetas.shape[0]
        per_net = 8 * (X.shape[0] * self._width_sum + self.n_params)
        chunk = max(1, min(max_bytes, _CHUNK_BYTES) // per_net)
        out = np.empty(k)
        with np.errstate(**_IGNORE):
            for start in range(0, k, chunk):
                T = Thetas[start : start + chunk]
                if T.shape[0] == 1:
                    out[start] = self._loss(T[0], X, y, lossfn)
                else:
                    out[start : start + T.shape[0]] = self._population_chunk(T, X, y, lossfn)
        return out

    def _population_chunk(
        self, T: np.ndarray, X: np.ndarray, y: np.ndarray, lossfn: Loss
    ) -> np.ndarray:
        # Activations of k networks as a (k, width, batch) stack; layer l is one
        # batched product W_j^T a_j^T over the stacked (k, n_in, n_out) weights
        # (views into T, no copy), the first layer broadcasting X^T.
        k = T.shape[0]
        batch = X.shape[0]
        at = X.T
        for i, (w, shape, b, act) in enumerate(self._layers):
            Wt = T[:, w].reshape(k, *shape).transpose(0, 2, 1)  # (k, n_out, n_in)
            if i == 0 and batch >= _TALL_BATCH:
                # one tall product [W_1^T; ...; W_k^T] X^T (a copy of the weights)
                # beats k thin products once the batch is long
                zt = (Wt.reshape(k * shape[1], shape[0]) @ at).reshape(k, shape[1], batch)
            else:
                zt = np.matmul(Wt, at)
            zt += T[:, b, None]
            at = act.forward(zt, zt)
        return lossfn.population(at, y)

    # -- classification helpers -------------------------------------------------------------
    def predict(self, theta: Any, X: Any) -> np.ndarray:
        """Predicted classes (argmax of the outputs) for the rows of ``X``: ``(batch,)`` ints."""
        if self.n_out < 2:
            raise ShapeError(
                f"predict needs one output unit per class (at least 2); the network has "
                f"{self.n_out}"
            )
        return np.argmax(self.forward(theta, X), axis=1)

    def accuracy(self, theta: Any, X: Any, y: Any) -> float:
        """Fraction of rows of ``X`` whose predicted class equals the label.

        ``y`` holds integer labels ``(batch,)``, or one row of scores per sample
        ``(batch, n_out)`` (e.g. one-hot targets), whose argmax is the label.
        """
        pred = self.predict(theta, X)
        try:
            y_arr = np.asarray(y)
        except (TypeError, ValueError):  # ragged: check_labels says what was expected
            y_arr = y
        if isinstance(y_arr, np.ndarray) and y_arr.shape == (pred.shape[0], self.n_out):
            labels = np.argmax(y_arr, axis=1)
        else:
            labels = check_labels(y_arr, pred.shape[0], self.n_out)
        return float(np.mean(pred == labels))

    def __repr__(self) -> str:
        out = (
            f", output_activation={self.output_activation!r}"
            if self.output_activation != "identity"
            else ""
        )
        return f"MLP({list(self.sizes)}, activation={self.activation!r}{out})"
