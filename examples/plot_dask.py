"""
Distributed evaluation with Dask
================================

Derivative-free methods that ask for many points at once — a CMA-ES generation, a
random-search batch, the probes of a finite-difference gradient — can evaluate
them in parallel. :func:`dfo.minimize` takes any
:class:`concurrent.futures.Executor`; Dask's ``Client.get_executor()`` is one, and
the same code runs on a laptop's cores or on a cluster. Results are identical to a
serial run: the executor changes where points are evaluated, never which.

This example starts a local Dask cluster of two worker processes (on this machine
only) and tunes the two parameters of a slow simulation.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
from dask.distributed import Client, LocalCluster

import dfo

SMOKE = os.environ.get("DFO_EXAMPLE_SMOKE") == "1"  # the tests run a reduced budget
BUDGET = 40 if SMOKE else 240

# %%
# A slow black box
# ----------------
# A stand-in for an expensive simulation: a spring-and-damper system integrated
# with 30,000 small time steps (about ten milliseconds of pure Python). Its two
# parameters, the logarithms of the stiffness and the damping, should make the mass
# settle at 1 as fast as possible; the value is the integrated squared distance to
# 1. The function only needs to be picklable: Dask ships it to the workers
# (functions defined in a script are sent by value).


def settle_error(log_params):
    stiffness, damping = np.exp(np.clip(log_params, -5.0, 5.0)).tolist()
    dt = 1e-4
    pos = vel = err = 0.0
    for _ in range(30_000):
        vel += (stiffness * (1.0 - pos) - damping * vel) * dt
        pos += vel * dt  # semi-implicit Euler: stable for these stiffnesses
        err += (1.0 - pos) ** 2 * dt
    return err


def tune(executor=None):
    """The same CMA-ES run, on an executor or in this process."""
    return dfo.minimize(
        settle_error,
        np.zeros(2),
        method="cma-es",
        budget=BUDGET,
        seed=0,
        popsize=8,
        executor=executor,
    )


# %%
# A local cluster
# ---------------
# ``LocalCluster`` starts a scheduler and two worker processes bound to this
# machine's loopback interface, without the web dashboard. Each generation of 8
# candidates is split into one task per worker. On a real cluster, connect to its
# scheduler instead: ``Client("tcp://scheduler-host:8786")``. The ``with`` blocks
# shut the workers and the scheduler down at the end.


def tune_on_dask():
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # any free port: never collides with another cluster
    )
    with cluster, Client(cluster) as client:
        client.run(settle_error, np.zeros(2))  # warm up every worker
        return tune(client.get_executor())


# %%
# Run both
# --------
# Dask's worker processes start by importing this script, so the part that *runs*
# things sits under ``if __name__ == "__main__":`` (the usual rule for scripts that
# start processes).

if __name__ == "__main__":
    start = time.perf_counter()
    settle_error(np.zeros(2))
    print(f"one evaluation takes {1e3 * (time.perf_counter() - start):.0f} ms")

    serial = tune()
    print(f"serial:          {serial.nfev} evaluations in {serial.time:.2f} s")
    parallel = tune_on_dask()
    print(f"Dask, 2 workers: {parallel.nfev} evaluations in {parallel.time:.2f} s")
    print(f"speed-up {serial.time / parallel.time:.2f}x; best value {parallel.fun:.4g}")
    print("identical result:", bool(np.array_equal(serial.x, parallel.x)))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(serial.history["time"], serial.history["best"], label="serial")
    ax.plot(parallel.history["time"], parallel.history["best"], "--", label="Dask, 2 workers")
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel("best value so far")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()

# %%
# Both runs follow exactly the same search path (same seed, same values in the same
# order); only the wall-clock time differs, and the times printed above are what
# parallelism bought on the machine that ran this page. Each generation waits for
# its slowest task, and each task pays a scheduler round trip and pickling (a few
# milliseconds), so the speed-up stays below the number of workers, and on a busy
# machine with few cores there may be none; it approaches the number of workers as
# one evaluation gets more expensive and the cores are free.
