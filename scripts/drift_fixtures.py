#!/usr/bin/env python3
"""Reference values for the drift statistics (src/stats/drift.rs).

Writes tests/fixtures/drift_cases.json and tests/fixtures/drift_inputs.json,
which are checked in: the Rust tests read them and need neither Python nor
SciPy. Regenerate with

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy
    /tmp/venv/bin/python scripts/drift_fixtures.py

The output is deterministic for a given NumPy/SciPy (seeded generator).

Where the values come from:

* js           scipy.spatial.distance.jensenshannon(ref, live, base=2)
* wasserstein  scipy.stats.wasserstein_distance(points, points, ref, live) / ref_std
* chi2_pvalue  scipy.stats.chisquare(observed, expected).pvalue over the bins
               kept (see chi2_inputs), checked against scipy.stats.chi2.sf
* gamma_q      scipy.special.gammaincc(a, x)
* psi, ks      NumPy, because SciPy has neither on binned data: the PSI
               formula with the documented smoothing, and the largest gap
               between the cumulative sums over the inner bin boundaries.
* bin_index    numpy.searchsorted(edges, x, side="left"), i.e. the number of
               edges strictly below x: x == edge goes to the lower bin.

drift_inputs.json, what the statistics are fed (docs/drift.md):

* wasserstein_means  a reference sample binned as `model-exporter baseline`
               bins it (edges: min, the quantiles i/10, max; each bin's
               count and mean) and a shifted live sample binned on the same
               edges; the expected value is
               scipy.stats.wasserstein_distance(ref_values, live_values) / ref_std
               on the raw values. The midpoint-based value is recorded too.
* chi2_two_sample    scipy.stats.chi2_contingency([ref_counts, live_counts],
               correction=False).pvalue over the bins not empty on both sides.
"""

import json
import os

import numpy as np
import scipy
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

EPSILON = 1e-4  # drift::PSI_EPSILON
SEED = 20240611
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "drift_cases.json")
INPUTS_OUT = os.path.join(
    os.path.dirname(__file__), "..", "tests", "fixtures", "drift_inputs.json"
)
INPUTS_SEED = 20261205


def bin_counts(edges, values):
    """Counts per bin (-inf, e0], (e0, e1], ..., (e_last, +inf)."""
    idx = np.searchsorted(edges, values, side="left")
    return np.bincount(idx, minlength=len(edges) + 1)


def bin_points(edges):
    """Midpoints of the inner bins, the outer bins on their edge (drift::bin_points)."""
    e = np.asarray(edges, dtype=float)
    return np.concatenate([[e[0]], 0.5 * (e[:-1] + e[1:]), [e[-1]]])


def psi(ref, live):
    def smooth(p):
        p = np.asarray(p, dtype=float)
        p = p / p.sum()
        p = np.where(p > 0, p, EPSILON)
        return p / p.sum()

    r, l = smooth(ref), smooth(live)
    return float(np.sum((l - r) * np.log(l / r)))


def ks(ref, live):
    r = np.cumsum(ref) / np.sum(ref)
    l = np.cumsum(live) / np.sum(live)
    return float(np.max(np.abs(l - r)[:-1], initial=0.0))


def chi2_inputs(ref, live):
    """Observed and expected counts over the kept bins.

    Bins with zero reference proportion are dropped when empty live too, and
    given proportion EPSILON otherwise; then proportions are renormalised.
    """
    r = np.asarray(ref, dtype=float) / np.sum(ref)
    live = np.asarray(live)
    q = np.where(r > 0, r, np.where(live > 0, EPSILON, 0.0))
    keep = q > 0
    q = q[keep] / q[keep].sum()
    observed = live[keep].astype(float)
    return observed, observed.sum() * q


def chi2_pvalue(ref, live):
    observed, expected = chi2_inputs(ref, live)
    if len(observed) < 2:
        return 1.0
    res = stats.chisquare(observed, expected)
    check = stats.chi2.sf(res.statistic, len(observed) - 1)
    assert np.isclose(res.pvalue, check, rtol=1e-12, atol=0), (res.pvalue, check)
    return float(res.pvalue)


def case(name, ref, live, edges=None, lo=None, hi=None, ref_std=None):
    ref = [float(x) for x in ref]
    live = [int(x) for x in live]
    out = {"name": name, "reference": ref, "live": live}
    out["psi"] = psi(ref, live)
    out["ks"] = ks(ref, live)
    out["js"] = float(jensenshannon(ref, live, base=2))
    out["chi2_pvalue"] = chi2_pvalue(ref, live)
    if edges is not None:
        points = bin_points(edges)
        w = stats.wasserstein_distance(points, points, u_weights=ref, v_weights=live)
        out.update(
            edges=[float(e) for e in edges],
            min=float(lo),
            max=float(hi),
            points=[float(p) for p in points],
            ref_std=float(ref_std),
            wasserstein=float(w / ref_std),
        )
    return out


def numeric(rng, name, bins, shift=0.0, scale=1.0, n_ref=20000, n_live=2000, edges=None):
    """Reference N(0, 1) binned on its own quantiles (or given edges); live
    N(shift, scale) binned on the same edges."""
    ref_values = rng.normal(0.0, 1.0, n_ref)
    if edges is None:
        edges = np.quantile(ref_values, np.arange(1, bins) / bins)
    edges = np.asarray(edges, dtype=float)
    ref = bin_counts(edges, ref_values) / n_ref
    live = bin_counts(edges, rng.normal(shift, scale, n_live))
    return case(
        name, ref, live, edges, ref_values.min(), ref_values.max(), ref_values.std()
    )


def categorical(rng, name, ref, n_live, live_probs=None):
    live_probs = ref if live_probs is None else live_probs
    live_probs = np.asarray(live_probs, dtype=float)
    live = rng.multinomial(n_live, live_probs / live_probs.sum())
    return case(name, ref, live)


def gamma_cases():
    out = []
    for a in [0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 50.5, 200.0, 1000.0]:
        for x in sorted({0.01, 0.5 * a, a, a + 0.999, a + 1.0, 2.0 * a, 5.0 * a + 10.0, 100.0}):
            out.append({"a": a, "x": x, "q": float(special.gammaincc(a, x))})
    return out


def bin_index_cases(rng):
    edges = np.round(np.sort(rng.normal(0.0, 1.0, 9)), 3)
    xs = np.concatenate([edges, rng.normal(0.0, 1.5, 20), [-1e9, 1e9]])
    return {
        "edges": [float(e) for e in edges],
        "x": [float(x) for x in xs],
        "bin": [int(i) for i in np.searchsorted(edges, xs, side="left")],
    }


def baseline_bins(values, bins=10):
    """Edges, counts and per-bin means as `model-exporter baseline` makes
    them: edges min, the quantiles i/bins, max (repeats merged); bins
    (-inf, e0], (e0, e1], ..., (e_last, +inf)."""
    lo, hi = float(values.min()), float(values.max())
    qs = np.clip(np.quantile(values, np.arange(1, bins) / bins), lo, hi)
    edges = np.unique(np.concatenate([[lo], qs, [hi]]))
    idx = np.searchsorted(edges, values, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    sums = np.bincount(idx, weights=values, minlength=len(edges) + 1)
    means = [float(s / c) if c > 0 else None for s, c in zip(sums, counts)]
    return edges, counts, means


def wasserstein_case(rng, name, draw, shift_sd, m=20000, n=20000):
    ref_values = draw(rng, m)
    ref_std = float(ref_values.std())
    live_values = draw(rng, n) + shift_sd * ref_std
    edges, counts, means = baseline_bins(ref_values)
    live = bin_counts(edges, live_values)
    mid = np.concatenate([[edges[0]], 0.5 * (edges[:-1] + edges[1:]), [edges[-1]]])
    midpoints = stats.wasserstein_distance(mid, mid, u_weights=counts, v_weights=live)
    return {
        "name": name,
        "edges": [float(e) for e in edges],
        "count": int(m),
        "proportions": [float(c / m) for c in counts],
        "means": means,
        "mean": float(ref_values.mean()),
        "std": ref_std,
        "live": [int(c) for c in live],
        "wasserstein": float(stats.wasserstein_distance(ref_values, live_values) / ref_std),
        "midpoints": float(midpoints / ref_std),
    }


def two_sample_case(name, ref_counts, live):
    ref_counts = np.asarray(ref_counts, dtype=float)
    live = np.asarray(live, dtype=float)
    table = np.array([ref_counts, live])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        p = 1.0
    else:
        p = float(stats.chi2_contingency(table, correction=False).pvalue)
    m = int(ref_counts.sum())
    return {
        "name": name,
        "count": m,
        "proportions": [float(c / m) for c in ref_counts],
        "live": [int(c) for c in live],
        "pvalue": p,
    }


def inputs():
    rng = np.random.default_rng(INPUTS_SEED)
    normal = lambda r, k: r.normal(0.0, 1.0, k)
    student = lambda r, k: r.standard_t(3, k)
    lognormal = lambda r, k: r.lognormal(0.0, 1.0, k)
    wasserstein = [
        wasserstein_case(rng, f"normal, shift {s} sd", normal, s) for s in [0.1, 0.25, 0.5, 1.0]
    ]
    wasserstein += [
        wasserstein_case(rng, f"student t(3), shift {s} sd", student, s)
        for s in [0.1, 0.25, 0.5, 1.0]
    ]
    wasserstein += [
        wasserstein_case(rng, f"lognormal, shift {s} sd", lognormal, s) for s in [0.1, 0.5, 1.0]
    ]
    probs = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
    two_sample = [
        two_sample_case("unchanged", rng.multinomial(1000, probs), rng.multinomial(300, probs)),
        two_sample_case(
            "window 10x the reference", rng.multinomial(500, probs), rng.multinomial(5000, probs)
        ),
        two_sample_case(
            "mix changed", rng.multinomial(1000, probs), rng.multinomial(400, probs[::-1])
        ),
        two_sample_case("two categories (1 dof)", [700, 300], [60, 40]),
        two_sample_case("unseen category in live (other = 0)", [600, 400, 0], [58, 40, 2]),
        two_sample_case("reference category absent in live", [700, 200, 100, 0], [75, 25, 0, 0]),
        two_sample_case(
            "numeric bins, shift",
            bin_counts(np.linspace(-1.5, 1.5, 9), rng.normal(0.0, 1.0, 2000)),
            bin_counts(np.linspace(-1.5, 1.5, 9), rng.normal(0.2, 1.0, 800)),
        ),
        two_sample_case("one bin kept", [10, 0, 0], [25, 0, 0]),
    ]
    doc = {
        "generator": "scripts/drift_fixtures.py",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "seed": INPUTS_SEED,
        "wasserstein_means": wasserstein,
        "chi2_two_sample": two_sample,
    }
    with open(INPUTS_OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for c in wasserstein:
        print(
            f"{c['name']}: scipy {c['wasserstein']:.4f}, midpoints {c['midpoints']:.4f}"
        )
    print(
        f"wrote {len(wasserstein)} Wasserstein and {len(two_sample)} chi-square cases "
        f"to {os.path.normpath(INPUTS_OUT)}"
    )


def main():
    rng = np.random.default_rng(SEED)
    cases = [
        numeric(rng, "2 bins, no shift", 2),
        numeric(rng, "5 bins, no shift", 5),
        numeric(rng, "10 bins, no shift", 10),
        numeric(rng, "12 bins, shift 0.1", 12, shift=0.1),
        numeric(rng, "12 bins, shift 0.5", 12, shift=0.5),
        numeric(rng, "12 bins, shift 1.0", 12, shift=1.0),
        numeric(rng, "12 bins, shift -3.0", 12, shift=-3.0),
        numeric(rng, "20 bins, scale 2", 20, scale=2.0),
        numeric(rng, "20 bins, scale 0.3", 20, scale=0.3),
        numeric(rng, "50 bins, shift 0.2, 50k live", 50, shift=0.2, n_live=50000),
        numeric(rng, "10 bins, 30 live values", 10, n_live=30),
        numeric(rng, "10 bins, shift 5 (live mostly in one bin)", 10, shift=5.0),
        numeric(
            rng,
            "fixed edges, empty reference bins",
            None,
            shift=0.5,
            edges=[-8.0, -6.0, -1.0, 0.0, 1.0, 6.0, 8.0],
        ),
        categorical(rng, "categorical, unchanged", [0.5, 0.3, 0.15, 0.05], 1000),
        categorical(
            rng,
            "categorical, mix changed",
            [0.5, 0.3, 0.15, 0.05],
            1000,
            [0.4, 0.3, 0.2, 0.1],
        ),
        categorical(
            rng,
            "categorical, unseen category in live (other = 0)",
            [0.6, 0.4, 0.0],
            500,
            [0.58, 0.4, 0.02],
        ),
        categorical(
            rng,
            "categorical, reference category absent in live",
            [0.7, 0.2, 0.1, 0.0],
            300,
            [0.75, 0.25, 0.0, 0.0],
        ),
        categorical(rng, "categorical, two categories, small", [0.9, 0.1], 40),
        categorical(
            rng,
            "categorical, 30 categories, tiny p-value",
            np.arange(1, 31, dtype=float) / np.arange(1, 31).sum(),
            20000,
            np.arange(30, 0, -1, dtype=float),
        ),
        categorical(rng, "categorical, one bin kept", [1.0, 0.0, 0.0], 25),
        case("identical, exact proportions", [0.25, 0.25, 0.5], [25, 25, 50]),
    ]
    doc = {
        "generator": "scripts/drift_fixtures.py",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "seed": SEED,
        "psi_epsilon": EPSILON,
        "cases": cases,
        "gamma_q": gamma_cases(),
        "bin_index": bin_index_cases(rng),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases, {len(doc['gamma_q'])} gamma values to {os.path.normpath(OUT)}")
    inputs()


if __name__ == "__main__":
    main()
