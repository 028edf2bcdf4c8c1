"""A from-scratch numpy multilayer perceptron over one flat parameter vector.

Every parameter of the network lives in one flat vector ``theta`` so that any
optimizer (finite differences, SPSA, CMA-ES, Nelder-Mead, SGD on backprop
gradients) sees the same ``R^n_params``. Layer ``l`` maps ``a -> f(a @ W + b)``
with ``W`` of shape ``(n_in, n_out)``; ``theta`` holds ``W.ravel()`` then ``b``
for the first layer, then the second layer, and so on.

The forward pass is written once (:meth:`MLP._run`) and serves the loss, the
backward pass, forward mode (:meth:`MLP.jvp`) and the population pass alike.
Arithmetic runs in the network's ``dtype``: float64 by default (the
gradient-accuracy demonstrations need it), or float32, about twice as fast for
population and finite-difference methods.

Backpropagation and forward mode are written layer by layer, each operation's
forward beside its backward and its tangent: the dense layer here, activations in
:mod:`dfo.nn.activations`, losses in :mod:`dfo.nn.losses`. Its cost is a small
constant times one forward pass, whatever the number of parameters
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
from dfo.objective import DTYPES, as_real, check_dtype

__all__ = ["MLP"]

# Population pass: networks are processed in chunks with about this many bytes of
# activations, so that each chunk's elementwise passes run in cache (for large
# populations, 3x faster than one pass over everything).
_CHUNK_BYTES = 2 * 2**20
#: float32 populations of at least this many networks run every layer in columns
_COLUMNS_FROM = 4


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
    dtype : {"float64", "float32"} or numpy type, default float64
        Float type of the arithmetic: parameters, inputs, activations, losses and
        gradients are held in it (inputs of another type are converted).

    Attributes
    ----------
    sizes : tuple of int
    activation, output_activation : str
    n_params : int
        Length of the flat parameter vector.
    n_in, n_out : int
        Input and output widths.
    dtype : numpy.dtype

    Raises
    ------
    ValueError
        If ``sizes`` has fewer than two entries or a non-positive width.
    InvalidOptionError
        If an activation name or the dtype is unknown.

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
        dtype: Any = np.float64,
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
        self.dtype = check_dtype(dtype)

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
        # _params of one vector: per layer the weights' slice and shape, the bias's
        # index (None: in the first layer's [W; b]), whether it is the output layer
        self._views: tuple[tuple[slice, tuple[int, int], Any, bool], ...] = tuple(
            (slice(w.start, b.stop), (n_in + 1, n_out), None, i == n_layers - 1)
            if i == 0
            else (w, (n_in, n_out), (None, b), i == n_layers - 1)
            for i, (w, (n_in, n_out), b, _) in enumerate(layers)
        )
        self.n_params = offset
        # activations per candidate and sample in the population pass
        self._width_sum = sum(self.sizes[1:])

    # -- parameters ----------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of weight layers (``len(sizes) - 1``)."""
        return len(self._layers)

    def unflatten(self, theta: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split ``theta`` into ``[(W, b), ...]`` per layer.

        ``W`` has shape ``(n_in, n_out)`` and ``b`` shape ``(n_out,)``. When
        ``theta`` is an array of the network's dtype these are views: writing into
        them changes ``theta``.
        """
        theta = self.check_theta(theta)
        return [(theta[w].reshape(shape), theta[b]) for w, shape, b, _ in self._layers]

    def flatten(self, layers: Sequence[tuple[Any, Any]]) -> np.ndarray:
        """Inverse of :meth:`unflatten`: pack ``[(W, b), ...]`` into a flat vector."""
        if len(layers) != self.n_layers:
            raise ShapeError(f"expected {self.n_layers} (W, b) pairs; got {len(layers)}")
        theta = np.empty(self.n_params, dtype=self.dtype)
        for i, ((W, b), (w, shape, bs, _)) in enumerate(zip(layers, self._layers, strict=True)):
            W = np.asarray(W, dtype=self.dtype)
            b = np.asarray(b, dtype=self.dtype)
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
        other activations. The draws are float64 (the same numbers for every dtype),
        returned in the network's dtype.

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
        return theta.astype(self.dtype, copy=False)

    # -- validation (public entry points only) ------------------------------------
    def check_theta(self, theta: Any, name: str = "theta") -> np.ndarray:
        """Return ``theta`` as a vector of the network's dtype and ``(n_params,)``, or raise.

        Raises
        ------
        TypeError
            If ``theta`` is not numeric.
        ShapeError
            If its shape is not ``(n_params,)``.
        """
        try:
            arr = as_real(theta, self.dtype)
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
        # float32 and float64 rows are kept as they are (population_loss converts
        # them one chunk at a time)
        is_float = type(Thetas) is np.ndarray and Thetas.dtype.name in DTYPES
        try:
            arr = Thetas if is_float else as_real(Thetas, self.dtype)
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
        """Return ``X`` in the network's dtype, shape ``(batch, n_in)``, ``batch >= 1``, or raise.

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
            arr = as_real(X, self.dtype)
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
        """Validate targets for ``loss`` on ``batch`` rows (see :mod:`dfo.nn.losses`).

        Labels come back as ``intp``, real targets in the network's dtype.
        """
        y = get_loss(loss).check_targets(y, batch, self.n_out, name)
        return y.astype(self.dtype, copy=False) if y.dtype.kind == "f" else y

    def _check_all(
        self, theta: Any, X: Any, y: Any, loss: str | Loss
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Loss]:
        lossfn = get_loss(loss)
        theta = self.check_theta(theta)
        X = self.check_inputs(X)
        y = self.check_targets(y, X.shape[0], lossfn)
        return theta, X, y, lossfn

    # -- the forward pass, written once ---------------------------------------------------
    def _params(
        self, theta: np.ndarray, columns: bool = False
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Per layer the views into ``theta`` that :meth:`_run` multiplies and adds.

        The first layer gives ``([W; b], None)``: its bias is the last row of one
        ``(n_in + 1, n_out)`` matrix (``theta`` holds ``W`` then ``b``), multiplied by
        the inputs' column of ones (:meth:`_inputs`). Any other hidden layer gives
        ``(W, b)`` shaped for rows of samples, ``W`` of shape ``(n_in, n_out)`` and
        ``b`` of shape ``(1, n_out)``; the output layer ``(W^T, b)`` shaped for columns
        of samples, ``(n_out, n_in)`` and ``(n_out, 1)`` (``[W; b]^T`` when it is also
        the first). ``columns=True`` shapes every layer as the output layer is
        (``[W; b]^T`` first). A stack ``(k, n_params)`` adds a leading axis ``k`` to
        each. No copy is made.
        """
        params: list[tuple[np.ndarray, np.ndarray | None]] = []
        if theta.ndim == 1:  # the same views, fewer steps
            for w_view, shape, b_view, last in self._views:
                W, bias = theta[w_view].reshape(shape), None if b_view is None else theta[b_view]
                transposed = last or columns
                params.append((W.T, None if bias is None else bias.T) if transposed else (W, bias))
            return params
        lead = theta.shape[:-1]
        for i, (w, (n_in, n_out), b, _) in enumerate(self._layers):
            if i == 0:
                Wb = theta[..., w.start : b.stop].reshape(*lead, n_in + 1, n_out)
                params.append((Wb, None))
            else:
                params.append((theta[..., w].reshape(*lead, n_in, n_out), theta[..., None, b]))
        for i in range(len(params)) if columns else (-1,):
            W, bias = params[i]
            params[i] = (W.swapaxes(-1, -2), None if bias is None else bias.swapaxes(-1, -2))
        return params

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        """``[X, 1]``: the inputs with a column of ones, for the first layer's ``[W; b]``.

        ``X`` of ``n_in + 1`` columns is taken to be that already (unchecked callers
        that evaluate many times on the same data keep it, saving a copy per call).
        """
        if X.shape[-1] == self.n_in + 1:
            return X
        Xe = np.empty((X.shape[0], self.n_in + 1), dtype=self.dtype)
        Xe[:, :-1] = X
        Xe[:, -1] = 1.0
        return Xe

    def _run(
        self,
        params: list[tuple[np.ndarray, np.ndarray | None]],
        a: np.ndarray,
        keep: list[np.ndarray] | None = None,
        tangents: list[tuple[np.ndarray, np.ndarray | None]] | None = None,
        out: list[np.ndarray] | None = None,
        columns: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The forward pass: one row per sample, the output layer's result transposed.

        ``a`` is ``[X, 1]`` of shape ``(batch, n_in + 1)`` (:meth:`_inputs`). A hidden
        layer computes ``a_l = f_l(a_{l-1} W_l + b_l)`` (shape ``(batch, n_out)``), the
        output layer ``a_L^T = f_L(W_L^T a_{L-1}^T + b_L)`` (shape ``(n_out, batch)``,
        the layout of :mod:`dfo.nn.losses`): the same products, the last one written
        transposed. The first layer's bias is in its product, ``[X, 1] [W; b]``.
        Bias and activation are applied in place on the product. With stacked
        ``params`` every layer is one batched product over the ``k`` networks (their
        weights are views into the stack, each a contiguous matrix) and the output has
        shape ``(k, n_out, batch)``. When ``keep`` is a list, each layer's output is
        appended to it (for the backward pass). ``out``, when given, holds one array per
        layer of at least the product's shape (leading rows are used): the products are
        written there, with no allocation.

        ``columns=True`` runs every layer as the output layer, one column per sample:
        ``a`` is ``[X, 1]^T`` of shape ``(n_in + 1, batch)``, each layer computes
        ``a_l^T = f_l(W_l^T a_{l-1}^T + b_l)`` (shape ``(k, n_out, batch)``) and
        ``params`` come from ``_params(..., columns=True)``: the same dot products, each
        layer's result written transposed (``a`` C-contiguous, every product's operands
        are contiguous, which float32 products on short batches run faster).

        Forward mode: with ``tangents`` (the ``params`` of ``k`` stacked directions
        ``V``), the tangent of each layer is pushed beside its forward,
        ``dz = a dW + da W + db`` (the inputs have none; transposed in the output
        layer) and ``da = f'(z) dz``; the tangent of the output, ``(k, n_out, batch)``,
        is returned beside the output (None without ``tangents``).
        """
        da = None
        last = len(params) - 1
        for i, ((W, b), (_, _, _, act)) in enumerate(zip(params, self._layers, strict=True)):
            buf = None if out is None else out[i][: W.shape[0]]
            rows = i < last and not columns
            if rows:  # z = a W + b
                z = np.matmul(a, W, out=buf)
            else:  # z^T = W^T a^T + b
                if not columns:
                    a = a.swapaxes(-1, -2)
                z = np.matmul(W, a, out=buf)
            if b is not None:
                z += b
            if tangents is not None:  # dz = a dW + da W + db, laid out like z
                dW, db = tangents[i]
                if rows:
                    dz = np.matmul(a, dW)
                    if da is not None:
                        dz += np.matmul(da, W)
                else:
                    dz = np.matmul(dW, a)
                    if da is not None:
                        dz += np.matmul(W, da if columns else da.swapaxes(-1, -2))
                if db is not None:
                    dz += db
            a = act.forward(z, z)
            if keep is not None:
                keep.append(a)
            if tangents is not None:
                da = act.tangent(a, dz)
        return a, da

    # -- forward / loss / backward ------------------------------------------------------
    def forward(self, theta: Any, X: Any, *, check: bool = True) -> np.ndarray:
        """Network outputs for the rows of ``X``: shape ``(batch, n_out)``.

        ``check=False`` skips validation (see :meth:`loss`).
        """
        if check:
            theta, X = self.check_theta(theta), self.check_inputs(X)
        with np.errstate(all="ignore"):
            return np.ascontiguousarray(self._run(self._params(theta), self._inputs(X))[0].T)

    def loss(
        self, theta: Any, X: Any, y: Any, loss: str | Loss = "cross_entropy", *, check: bool = True
    ) -> float:
        """Mean loss over the rows of ``X`` (see :mod:`dfo.nn.losses` for the definitions).

        Parameters
        ----------
        theta : array_like, shape (n_params,)
        X : array_like, shape (batch, n_in)
        y : array_like
            Integer labels ``(batch,)`` in ``[0, n_out)`` for ``"cross_entropy"``;
            targets ``(batch, n_out)`` (or ``(batch,)`` if ``n_out == 1``) for ``"mse"``.
        loss : {"cross_entropy", "mse"}
        check : bool, default True
            False skips every check, for callers that validated once and evaluate many
            times (:class:`~dfo.nn.network_objective.NetworkObjective`): ``theta`` must
            then be an array of the network's ``dtype`` and shape, ``X`` a 2-D array of
            that dtype as returned by :meth:`check_inputs` (or ``[X, 1]``, the same with
            a column of ones appended, which saves one copy of ``X`` per call), ``y``
            as returned by :meth:`check_targets`.

        Returns
        -------
        float
            May be inf or nan for huge or non-finite parameters (without warnings).
        """
        if check:
            theta, X, y, lossfn = self._check_all(theta, X, y, loss)
        else:
            lossfn = get_loss(loss)
        with np.errstate(all="ignore"):
            out, _ = self._run(self._params(theta[None]), self._inputs(X))
            return float(lossfn.population(out, y)[0])

    def loss_and_grad(
        self, theta: Any, X: Any, y: Any, loss: str | Loss = "cross_entropy", *, check: bool = True
    ) -> tuple[float, np.ndarray]:
        """Loss and its exact gradient by backpropagation.

        Same arguments as :meth:`loss`. Returns ``(value, grad)`` with ``grad`` a new
        array of the network's ``dtype`` and shape ``(n_params,)``, laid out like ``theta``.
        """
        if check:
            theta, X, y, lossfn = self._check_all(theta, X, y, loss)
        else:
            lossfn = get_loss(loss)
        params = self._params(theta)
        with np.errstate(all="ignore"):
            # forward, keeping each layer's output (activations need only their output)
            acts = [self._inputs(X)]
            self._run(params, acts[0], keep=acts)
            value, g = lossfn.value_and_grad(acts[-1], y)
            # backward, layer by layer, writing straight into the flat gradient. With
            # z = a W + b: dL/dW = a^T dL/dz, dL/db = column sums of dL/dz,
            # dL/da = dL/dz W^T; the output layer's dL/dz^T comes transposed. The
            # first layer's [W; b] takes both from one product with [X, 1].
            grad = np.empty(self.n_params, dtype=self.dtype)
            last = len(self._layers) - 1
            for i in range(last, -1, -1):
                w, (n_in, n_out), b, act = self._layers[i]
                g = act.backward(acts.pop(), g)  # consumes the layer's output
                if i == last:
                    g = g.T  # dL/dz, (batch, n_out); params[i][0] is W^T
                if i == 0:
                    dWb = grad[w.start : b.stop].reshape(n_in + 1, n_out)
                    np.matmul(acts[-1].T, g, out=dWb)
                    break
                np.matmul(acts[-1].T, g, out=grad[w].reshape(n_in, n_out))
                np.add.reduce(g, axis=0, out=grad[b])
                W = params[i][0]
                g = np.matmul(g, W if i == last else W.T)
        return value, grad

    # -- forward mode ----------------------------------------------------------------------
    def jvp(
        self,
        theta: Any,
        v: Any,
        X: Any,
        y: Any,
        loss: str | Loss = "cross_entropy",
        *,
        check: bool = True,
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
        X, y, loss, check
            As in :meth:`loss` (``check=False``: ``v`` an array of the network's dtype).

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
        if check:
            theta, X, y, lossfn = self._check_all(theta, X, y, loss)
        else:
            lossfn = get_loss(loss)
        try:
            V = v if not check else as_real(v, self.dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"v must be a real vector of length {self.n_params}; got {type(v).__name__}"
            ) from exc
        if V.shape[-1:] != (self.n_params,) or V.ndim > 2:
            raise ShapeError(
                f"v must have shape ({self.n_params},) or (k, {self.n_params}) for network "
                f"{self.sizes}; got shape {V.shape}"
            )
        with np.errstate(all="ignore"):
            # one direction (a vector) keeps 2-D products, as the forward pass's
            out, dout = self._run(self._params(theta), self._inputs(X), tangents=self._params(V))
            assert dout is not None  # tangents were given
            value, dderiv = lossfn.value_and_jvp(out, y, dout)
        if V.ndim == 1 and type(dderiv) is self.dtype.type:  # a scalar of the dtype
            return value, float(dderiv)
        dderiv = np.asarray(dderiv, dtype=self.dtype).reshape(-1)
        return value, (float(dderiv[0]) if V.ndim == 1 else dderiv)

    # -- population forward ----------------------------------------------------------------
    def population_loss(
        self,
        Thetas: Any,
        X: Any,
        y: Any,
        loss: str | Loss = "cross_entropy",
        *,
        max_bytes: int = 256 * 2**20,
        check: bool = True,
    ) -> np.ndarray:
        """Losses of ``k`` parameter vectors on the same data in one vectorized pass.

        Equal (to rounding, ~1e-15 relative in float64) to ``[self.loss(t, X, y, loss)
        for t in Thetas]``, through the same forward pass run on a stack of networks:
        each layer is one batched matrix product on the stacked ``(k, n_in, n_out)``
        weights (views into ``Thetas``, each a contiguous matrix), bias and activation
        are applied in place, and the loss is one pass over each chunk's stack of
        outputs. This is the hot path
        of population and finite-difference methods (``benchmarks/bench_population.py``
        measures it against the machine's matrix-product rate).

        A population of one runs the forward pass of :meth:`loss` and
        :meth:`loss_and_grad` (the same bits). float32 populations of four or more
        (whatever the memory layout of ``X``) run every layer transposed, one column per
        sample (``W^T a^T``, from ``[X, 1]^T`` held contiguous; faster for float32
        products on short batches): the same dot
        products, which BLAS may round differently from the rows forward of single
        calls, so they agree with single calls to 1e-6 relative (float32 eps 1.2e-7)
        rather than bit for bit, and with float64 to the float32 roundings (1e-4).

        Parameters
        ----------
        Thetas : array_like, shape (k, n_params)
            One parameter vector per row. Rows of another float type are converted to
            the network's ``dtype`` one chunk at a time.
        X, y, loss, check
            As in :meth:`loss` (``check=False``: ``Thetas`` a 2-D float array).
        max_bytes : int, default 256 MiB
            Memory limit for the intermediates. The ``k`` networks are processed in
            chunks of ``c`` rows with ``c * itemsize * (batch * sum(sizes[1:]) +
            n_params) <= max_bytes``: an upper bound on the activations (every layer's
            output for every sample) and the weight copy of one chunk. At least one
            network is processed at a time, so a single very large network may exceed
            it. Chunks also keep their activations under about 2 MiB, so that the
            elementwise passes run in cache (faster than one pass over a large
            population); wide networks are still processed several at a time.

        Returns
        -------
        ndarray, shape (k,), of the network's dtype
        """
        if check:
            lossfn = get_loss(loss)
            Thetas = self._check_thetas(Thetas)
            X = self.check_inputs(X)
            y = self.check_targets(y, X.shape[0], lossfn)
            max_bytes = _check_positive_int(max_bytes, "max_bytes")
        else:
            lossfn = get_loss(loss)
        k, batch, dtype = Thetas.shape[0], X.shape[0], self.dtype
        size = dtype.itemsize
        activations = size * batch * self._width_sum
        Xe = self._inputs(X)
        # float32 populations of 4 or more run every layer in columns, from [X, 1]^T
        # contiguous (faster there; below 4, a transposed copy costs about what they
        # gain). The choice depends on k alone, never on how the inputs are laid out
        # in memory, so the same call gives the same bits whatever ran before it.
        columns = dtype.char == "f" and k >= _COLUMNS_FROM
        if columns:
            XeT = Xe.T
            Xe = XeT if XeT.flags.c_contiguous else np.ascontiguousarray(XeT)
        per_net = activations + size * self.n_params
        if k == 1 or (0 < k * activations <= _CHUNK_BYTES and k * per_net <= max_bytes):
            # one chunk (small populations, the common case): no buffers, no loop
            with np.errstate(all="ignore"):
                T = Thetas if Thetas.dtype == dtype else Thetas.astype(dtype)
                params = self._params(T, columns)
                values = lossfn.population(self._run(params, Xe, columns=columns)[0], y)
            if type(values) is np.ndarray and values.base is None and values.dtype == dtype:
                return values  # a new array of the network's dtype (the built-in losses')
            out = np.empty(k, dtype=dtype)
            out[:] = values
            return out
        chunk = max(
            1,
            min(max_bytes // per_net, _CHUNK_BYTES // activations),
        )
        out = np.empty(k, dtype=dtype)
        # the chunks' products reuse one set of arrays: no fresh memory per chunk
        rows = min(chunk, k)
        shapes = [(n, batch) if columns else (batch, n) for n in self.sizes[1:-1]]
        shapes.append((self.n_out, batch))
        bufs = [np.empty((rows, *shape), self.dtype) for shape in shapes] if k else []
        with np.errstate(all="ignore"):
            for start in range(0, k, chunk):
                T = Thetas[start : start + chunk].astype(self.dtype, copy=False)
                values, _ = self._run(self._params(T, columns), Xe, out=bufs, columns=columns)
                out[start : start + T.shape[0]] = lossfn.population(values, y)
        return out

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
        dtype = "" if self.dtype == np.float64 else f", dtype={self.dtype.name!r}"
        return f"MLP({list(self.sizes)}, activation={self.activation!r}{out}{dtype})"
