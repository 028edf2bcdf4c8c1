"""Figures and text tables for ``dfo scaling`` (:mod:`dfo.scaling`).

The figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg
canvas and saved as PNG, so nothing here touches pyplot's global state or needs
a display.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfo.scaling.accuracy import CosineRecord, StepErrorRecord
from dfo.scaling.costs import GradientTiming, Slope

__all__ = [
    "cosine_n_table",
    "cosine_table",
    "cost_table",
    "extrapolation_check",
    "plot_cosine_vs_n",
    "plot_gradient_costs",
    "plot_spsa_cosine",
    "plot_step_error",
    "slope_table",
    "step_error_table",
    "write_csv",
]

LABELS = {
    "loss": "one evaluation",
    "forward-fd": "forward FD",
    "central-fd": "central FD",
    "forward-mode": "forward mode",
    "forward-gradient": "forward gradient",
    "spsa": "SPSA (q=1)",
    "backprop": "backprop",
}
# forward and exact (n passes): blues; reverse (one pass): red; one-direction estimates: greens
COLORS = {
    "loss": "0.45",
    "forward-fd": "#1f77b4",
    "central-fd": "#6baed6",
    "forward-mode": "#08306b",
    "forward-gradient": "#31a354",
    "spsa": "#a1d99b",
    "backprop": "#d62728",
}
MARKERS = {
    "loss": "s",
    "forward-fd": "o",
    "central-fd": "D",
    "forward-mode": "P",
    "forward-gradient": "X",
    "spsa": "^",
    "backprop": "v",
}


# -- CSV --------------------------------------------------------------------------------
def write_csv(path: str | Path, records: Sequence[Any]) -> Path:
    """Write dataclass records as a CSV file with one column per field.

    Parameters
    ----------
    path : str or Path
    records : sequence of dataclass instances
        All of the same type; nan is written as an empty field.

    Returns
    -------
    Path
        ``path`` (an empty file when ``records`` is empty).

    Raises
    ------
    TypeError
        If the records are not dataclass instances.
    """
    path = Path(path)
    if not records:
        path.write_text("")
        return path
    if not is_dataclass(records[0]):
        raise TypeError(f"records must be dataclass instances; got {type(records[0]).__name__}")
    names = [f.name for f in fields(records[0])]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        for r in records:
            writer.writerow({k: _csv_value(v) for k, v in asdict(r).items()})
    return path


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


# -- text tables ------------------------------------------------------------------------
def _by_size(records: Sequence[GradientTiming]) -> dict[int, dict[str, GradientTiming]]:
    table: dict[int, dict[str, GradientTiming]] = {}
    for r in records:
        table.setdefault(r.n_params, {})[r.method] = r
    return dict(sorted(table.items()))


def _ms(r: GradientTiming) -> str:
    return f"{r.seconds * 1e3:.3g}{'*' if r.extrapolated else ''}"


def cost_table(records: Sequence[GradientTiming]) -> str:
    """The cost of one gradient per size and method, as aligned text.

    Times are milliseconds; ``*`` marks finite-difference times extrapolated from
    the ``rows`` probe rows actually timed; "x eval" is backprop's time in units of
    one loss evaluation.

    Parameters
    ----------
    records : sequence of GradientTiming
        From :func:`dfo.scaling.measure_gradient_costs`.

    Returns
    -------
    str
        A header and one line per size.
    """
    fd_head = f"{'evals':>7} {'rows':>6} {'ms':>10} {'err':>7}"
    head = (
        f"{'':>13} {'':>8} | {'forward FD':^{len(fd_head)}} | {'central FD':^{len(fd_head)}} | "
        f"{'forward mode':^{len(fd_head)}} | {'fwd grad':^8} | {'SPSA':^8} | {'backprop':^13}\n"
        f"{'n':>7} {'h':>5} {'eval ms':>8} | {fd_head} | {fd_head} | {fd_head} | "
        f"{'ms':>8} | {'ms':>8} | {'ms':>6} {'x eval':>6}"
    )
    lines = [head, "-" * len(head.splitlines()[1])]
    for n, row in _by_size(records).items():
        loss, bp = row["loss"], row["backprop"]
        fd = " | ".join(
            f"{r.evaluations:>7} {r.probes_timed:>6} {_ms(r):>10} {r.rel_error:>7.1e}"
            for r in (row["forward-fd"], row["central-fd"], row["forward-mode"])
        )
        lines.append(
            f"{n:>7} {loss.hidden:>5} {loss.seconds * 1e3:>8.3g} | {fd} | "
            f"{row['forward-gradient'].seconds * 1e3:>8.3g} | {row['spsa'].seconds * 1e3:>8.3g} | "
            f"{bp.seconds * 1e3:>6.3g} {bp.forward_equivalents:>6.2f}"
        )
    return "\n".join(lines)


def extrapolation_check(records: Sequence[GradientTiming]) -> str:
    """One line per scheme: sampled estimate over measured time where both exist.

    Parameters
    ----------
    records : sequence of GradientTiming

    Returns
    -------
    str
        Empty when no size was timed both ways.
    """
    out = []
    for method in ("forward-fd", "central-fd", "forward-mode"):
        pairs = [
            (r.n_params, r.sample_estimate / r.seconds)
            for r in records
            if r.method == method and not r.extrapolated and not math.isnan(r.sample_estimate)
        ]
        if pairs:
            text = ", ".join(f"{ratio:.2f} (n={n})" for n, ratio in pairs)
            out.append(f"{LABELS[method]}: sampled estimate / full timing = {text}")
    return "\n".join(out)


def slope_table(slopes: Sequence[Slope], *, tolerance: float = 0.25, clock: str = "cpu") -> str:
    """Fitted slopes beside the expected ones, with a within-tolerance verdict.

    Parameters
    ----------
    slopes : sequence of Slope
        From :func:`dfo.scaling.fit_slopes`.
    tolerance : float, default 0.25
        Largest accepted distance from the expected slope.
    clock : {"cpu", "wall"}, default "cpu"
        The clock of the time slopes; the other clock's slope is shown too.

    Returns
    -------
    str
        A header and one line per slope.
    """
    other = "wall" if clock == "cpu" else "cpu"
    head = (
        f"{'method':<15} {'quantity':<12} {'slope':>6} {'expected':>8} {'fit range n':>14} "
        f"{'points (extrap.)':>16} {'all sizes':>9} {f'{other} clock':>10}  within {tolerance:g}"
    )
    lines = [head, "-" * len(head)]
    for s in slopes:
        quantity = f"time ({clock})" if s.quantity == "seconds" else s.quantity
        alt = s.slope_wall if other == "wall" else s.slope_cpu
        lines.append(
            f"{LABELS[s.method]:<15} {quantity:<12} {s.slope:>6.2f} {s.expected:>8.0f} "
            f"{f'{s.n_min}-{s.n_max}':>14} {f'{s.n_points} ({s.n_extrapolated})':>16} "
            f"{s.slope_all:>9.2f} {'' if math.isnan(alt) else f'{alt:.2f}':>10}  "
            f"{'yes' if s.ok(tolerance) else 'NO'}"
        )
    return "\n".join(lines)


def step_error_table(records: Sequence[StepErrorRecord]) -> str:
    """Per float type and scheme: the best step found, its error, and the rule of thumb.

    Parameters
    ----------
    records : sequence of StepErrorRecord
        From :func:`dfo.scaling.fd_step_error_curve`.

    Returns
    -------
    str
        A header and one line per float type and scheme present.
    """
    head = (
        f"{'dtype':<8} {'scheme':<8} {'best h':>9} {'min error':>10} {'rule h':>9} "
        f"{'error at rule h':>15} {'smallest h':>10} {'its error':>9}"
    )
    lines = [head, "-" * len(head)]
    for dtype in ("float64", "float32"):
        eps = float(np.finfo(dtype).eps)
        for scheme in ("forward", "central"):
            rs = sorted(
                (r for r in records if r.dtype == dtype and r.scheme == scheme),
                key=lambda r: r.h,
            )
            if not rs:
                continue
            best = min(rs, key=lambda r: r.rel_error)
            rule = math.sqrt(eps) if scheme == "forward" else eps ** (1 / 3)
            near = min(rs, key=lambda r: abs(math.log(r.h / rule)))
            lines.append(
                f"{dtype:<8} {scheme:<8} {best.h:>9.1e} {best.rel_error:>10.1e} {rule:>9.1e} "
                f"{near.rel_error:>15.1e} {rs[0].h:>10.1e} {rs[0].rel_error:>9.1e}"
            )
    return "\n".join(lines)


def cosine_n_table(records: Sequence[CosineRecord]) -> str:
    """Root mean square cosine of each method's one-direction estimate against ``n``.

    Parameters
    ----------
    records : sequence of CosineRecord
        From :func:`dfo.scaling.estimate_cosine` with one ``q``.

    Returns
    -------
    str
        A header and one line per size: each method's RMS cosine, and the theory.
    """
    methods = list(dict.fromkeys(r.method for r in records))
    cell = {(r.n_params, r.method): r for r in records}
    head = (
        f"{'n':>7}"
        + "".join(f"{LABELS.get(m, m).replace(' (q=1)', ''):>18}" for m in methods)
        + f"{'theory':>10}"
    )
    lines = [head, "-" * len(head)]
    for n in sorted({r.n_params for r in records}):
        rs = [cell[n, m] for m in methods if (n, m) in cell]
        lines.append(
            f"{n:>7}" + "".join(f"{r.cosine_rms:>18.4f}" for r in rs) + f"{rs[0].theory:>10.4f}"
        )
    return "\n".join(lines)


def cosine_table(records: Sequence[CosineRecord]) -> str:
    """Mean cosine per size and method (rows) and number of directions (columns), theory below.

    Parameters
    ----------
    records : sequence of CosineRecord
        From :func:`dfo.scaling.spsa_cosine`.

    Returns
    -------
    str
        A header and two lines (measured, theory) per size.
    """
    qs = sorted({r.q for r in records})
    sizes = sorted({r.n_params for r in records})
    methods = list(dict.fromkeys(r.method for r in records))
    cell = {(r.n_params, r.method, r.q): r for r in records}
    head = f"{'n':>7} {'method':<17} {'':<8}" + "".join(f"{f'q={q}':>8}" for q in qs)
    lines = [head, "-" * len(head)]
    for n in sizes:
        for method in methods:
            for what in ("measured", "theory"):
                values = [
                    cell[n, method, q].cosine_mean
                    if what == "measured"
                    else cell[n, method, q].theory
                    for q in qs
                    if (n, method, q) in cell
                ]
                label = (
                    f"{n:>7} {LABELS.get(method, method).replace(' (q=1)', ''):<17}"
                    if what == "measured"
                    else " " * 25
                )
                lines.append(f"{label} {what:<8}" + "".join(f"{v:>8.3f}" for v in values))
    return "\n".join(lines)


# -- figures ----------------------------------------------------------------------------
def _figure(ncols: int = 1, width: float = 7.0) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Fixed margins: a layout engine would draw the figure twice.
    fig = Figure(figsize=(width, 5.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols)
    top = 0.88 if ncols > 1 else 0.92  # room for a suptitle over several panels
    fig.subplots_adjust(left=0.8 / width, right=0.98, bottom=0.11, top=top, wspace=0.17)
    return fig, axes


def _scatter(
    ax: Any,
    records: Sequence[GradientTiming],
    method: str,
    values: Sequence[float],
    label: str | None = None,
) -> None:
    n = np.array([r.n_params for r in records])
    v = np.asarray(values, dtype=float)
    ext = np.array([r.extrapolated for r in records])
    color = COLORS[method]
    ax.plot(n, v, "-", color=color, lw=1.2, alpha=0.6)
    kw = {"marker": MARKERS[method], "linestyle": "none", "markersize": 6}
    ax.plot(n[~ext], v[~ext], color=color, label=label or LABELS[method], **kw)
    if ext.any():
        ax.plot(n[ext], v[ext], color=color, markerfacecolor="none", **kw)


def plot_gradient_costs(
    records: Sequence[GradientTiming],
    slopes: Sequence[Slope],
    path: str | Path,
    *,
    subtitle: str = "",
) -> Path:
    """Evaluations and time per gradient against the number of parameters.

    Left: loss evaluations per gradient (and backprop's measured cost in
    evaluations). Right: seconds per gradient with the fitted log-log lines over
    the fit range. Hollow markers are finite-difference points extrapolated from
    sampled coordinates.

    Parameters
    ----------
    records : sequence of GradientTiming
    slopes : sequence of Slope
    path : str or Path
        PNG file to write.
    subtitle : str, optional
        A line above both panels.

    Returns
    -------
    Path
    """
    from matplotlib.lines import Line2D

    fig, (ax_e, ax_t) = _figure(2, 14.0)
    clock = records[0].clock if records else "cpu"
    clock_name = "CPU time" if clock == "cpu" else "wall-clock time"
    by_method = {
        m: sorted((r for r in records if r.method == m), key=lambda r: r.n_params) for m in LABELS
    }
    fitted = {(s.method, s.quantity): s for s in slopes}
    for method in (
        "forward-fd",
        "central-fd",
        "forward-mode",
        "forward-gradient",
        "spsa",
        "backprop",
    ):
        rs = by_method[method]
        if rs:
            _scatter(ax_e, rs, method, [r.evaluations for r in rs])
    bp = by_method["backprop"]
    if bp:
        ax_e.plot(
            [r.n_params for r in bp],
            [r.forward_equivalents for r in bp],
            ":x",
            color=COLORS["backprop"],
            label="backprop, measured cost in evaluations",
        )
    ax_e.set(
        xscale="log",
        yscale="log",
        xlabel="parameters n",
        ylabel="loss evaluations per gradient",
        title="Passes per gradient: forward methods n, backprop and estimates constant",
    )
    ax_e.grid(True, which="major", alpha=0.3)
    ax_e.legend(fontsize=8, loc="upper left")

    all_n = np.array(sorted({r.n_params for r in records}), dtype=float)
    # wide grey guides: what ~n^2 (through forward mode's largest point) and ~n (through
    # backprop's) look like on these axes
    for method, power, name in (
        ("forward-mode", 2, "∝ n²: n passes"),
        ("backprop", 1, "∝ n: one pass"),
    ):
        rs = by_method[method]
        if not (rs and all_n.size):
            continue
        n1, t1 = float(rs[-1].n_params), float(rs[-1].seconds) * (2.0 if power == 2 else 0.5)
        guide = np.geomspace(all_n[0], all_n[-1], 20)
        ax_t.plot(
            guide,
            t1 * (guide / n1) ** power,
            color="0.5",
            lw=9,
            alpha=0.18,
            solid_capstyle="round",
            zorder=0,
        )
        ax_t.annotate(
            name,
            (guide[-1], t1),
            fontsize=11,
            color="0.3",
            ha="right",
            va="top",
            xytext=(-4, -10),
            textcoords="offset points",
            fontweight="bold",
        )
    for method in (
        "loss",
        "forward-fd",
        "central-fd",
        "forward-mode",
        "forward-gradient",
        "spsa",
        "backprop",
    ):
        rs = by_method[method]
        if not rs:
            continue
        s = fitted.get((method, "seconds"))
        label = LABELS[method] + (
            "" if s is None else f": slope {s.slope:.2f} (theory {s.expected:g})"
        )
        _scatter(ax_t, rs, method, [r.seconds for r in rs], label=label)
        if s is not None:
            fit = [r for r in rs if s.n_min <= r.n_params <= s.n_max]
            x = np.array([r.n_params for r in fit], dtype=float)
            y = np.array([r.seconds for r in fit])
            intercept = np.mean(np.log(y) - s.slope * np.log(x))
            xs = np.geomspace(x[0], x[-1], 20)
            ax_t.plot(xs, np.exp(intercept) * xs**s.slope, "--", color=COLORS[method], lw=1)
    handles, _ = ax_t.get_legend_handles_labels()
    handles += [
        Line2D([], [], marker="o", color="k", linestyle="none", label="measured"),
        Line2D(
            [],
            [],
            marker="o",
            color="k",
            markerfacecolor="none",
            linestyle="none",
            label="extrapolated from sampled coordinates",
        ),
    ]
    ax_t.legend(handles=handles, fontsize=7, loc="upper left")
    ax_t.set(
        xscale="log",
        yscale="log",
        xlabel="parameters n",
        ylabel=f"{clock_name} per gradient [s]",
        title="Time per gradient: forward ~ n², reverse (backprop) ~ n",
    )
    ax_t.grid(True, which="major", alpha=0.3)
    if subtitle:
        fig.suptitle(subtitle, fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def plot_step_error(records: Sequence[StepErrorRecord], path: str | Path) -> Path:
    """The V-shaped error of FD gradients against the step, with the rules of thumb.

    Parameters
    ----------
    records : sequence of StepErrorRecord
    path : str or Path
        PNG file to write.

    Returns
    -------
    Path
    """
    fig, ax = _figure(1, 8.0)
    colors = {"forward": "C0", "central": "C1"}
    styles = {"float64": ("-", "o"), "float32": ("--", "s")}
    marks: list[tuple[float, str, str]] = []  # the rules of thumb, labelled above the plot
    for dtype in ("float64", "float32"):
        for scheme in ("forward", "central"):
            rs = sorted(
                (r for r in records if r.dtype == dtype and r.scheme == scheme), key=lambda r: r.h
            )
            if not rs:
                continue
            line, marker = styles[dtype]
            ax.plot(
                [r.h for r in rs],
                [r.rel_error for r in rs],
                line,
                marker=marker,
                markersize=4,
                color=colors[scheme],
                label=f"{scheme}, {dtype}",
            )
        eps = float(np.finfo(dtype).eps)
        for value, scheme, name in (
            (math.sqrt(eps), "forward", "√eps"),
            (eps ** (1 / 3), "central", "eps^(1/3)"),
        ):
            ax.axvline(
                value,
                color=colors[scheme],
                linestyle=styles[dtype][0],
                lw=0.8,
                alpha=0.5,
                zorder=1,
            )
            marks.append((value, f"{name}\n{dtype}", colors[scheme]))
    n = records[0].n_params if records else 0
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="finite-difference step h (absolute)",
        ylabel="relative error ‖g_FD − g_backprop‖ / ‖g_backprop‖",
        title=f"FD gradient error vs step ({n}-parameter network): a tiny h is not more accurate",
    )
    ax.grid(True, which="major", alpha=0.3)
    # the rules of thumb as ticks of a top axis: their labels stay clear of the curves
    import matplotlib.ticker

    top = ax.secondary_xaxis("top")
    top.set_xticks([m[0] for m in marks], labels=[m[1] for m in marks], fontsize=7)
    top.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    for label, (_, _, color) in zip(top.get_xticklabels(), marks, strict=True):
        label.set_color(color)
    fig.subplots_adjust(top=0.84)  # room for those labels under the title
    ax.legend(
        fontsize=8,
        loc="lower left",
        title="float32: point and steps in float32,\nloss values rounded to float32",
        title_fontsize=7,
    )
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def plot_spsa_cosine(records: Sequence[CosineRecord], path: str | Path) -> Path:
    """Cosine of SPSA's averaged estimate with the gradient, against q, per size.

    Parameters
    ----------
    records : sequence of CosineRecord
    path : str or Path
        PNG file to write.

    Returns
    -------
    Path
    """
    fig, ax = _figure(1, 8.0)
    methods = list(dict.fromkeys(r.method for r in records))
    for i, n in enumerate(sorted({r.n_params for r in records})):
        color = f"C{i}"
        for method in methods:
            rs = sorted(
                (r for r in records if r.n_params == n and r.method == method), key=lambda r: r.q
            )
            if not rs:
                continue
            ax.errorbar(
                [r.q for r in rs],
                [r.cosine_mean for r in rs],
                yerr=[r.cosine_std for r in rs],
                marker=MARKERS.get(method, "o"),
                markersize=4,
                capsize=2,
                color=color,
                ls="-" if method == "spsa" else "--",
                label=f"n = {n}, {LABELS.get(method, method)}",
            )
        ax.plot(
            [r.q for r in rs],
            [r.theory for r in rs],
            ":",
            color=color,
            lw=1.2,
            label=f"n = {n}: √(q / (q + n))",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="directions q averaged (2q evaluations)",
        ylabel="cosine(estimate, true gradient)",
        title="SPSA and forward gradient: q ~ n directions to point the right way",
    )
    ax.set_ylim(top=1.05)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def plot_cosine_vs_n(records: Sequence[CosineRecord], path: str | Path) -> Path:
    """Root mean square cosine of one-direction estimates against ``n``, with theory.

    Parameters
    ----------
    records : sequence of CosineRecord
        From :func:`dfo.scaling.estimate_cosine` with one ``q``.
    path : str or Path
        PNG file to write.

    Returns
    -------
    Path
    """
    fig, ax = _figure(1, 8.0)
    for method in dict.fromkeys(r.method for r in records):
        rs = sorted((r for r in records if r.method == method), key=lambda r: r.n_params)
        ax.plot(
            [r.n_params for r in rs],
            [r.cosine_rms for r in rs],
            marker=MARKERS.get(method, "o"),
            color=COLORS.get(method, "k"),
            label=f"{LABELS.get(method, method)}, measured (RMS over {rs[0].repeats} draws)",
        )
    theory = sorted({(r.n_params, r.theory) for r in records})
    q = records[0].q if records else 1
    ax.plot(
        [n for n, _ in theory], [t for _, t in theory], "k:", lw=1.5, label="theory √(q / (q + n))"
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="parameters n",
        ylabel=f"cosine(estimate from q = {q} direction{'s' * (q > 1)}, true gradient)",
        title="One random direction says less and less about the gradient: ~1/√n",
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
