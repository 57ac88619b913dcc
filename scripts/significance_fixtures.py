#!/usr/bin/env python3
"""Reference values for the drift p-values (src/stats/significance.rs).

Writes tests/fixtures/significance_cases.json, which is checked in: the Rust
tests read it and need neither Python nor SciPy. Regenerate with

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy
    /tmp/venv/bin/python scripts/significance_fixtures.py

Deterministic for a given NumPy/SciPy (seeded generator). Where the values
come from:

* kolmogorov   scipy.stats.kstwobign.sf(x)
* chi2_pvalue  scipy.stats.chi2_contingency([live, reference counts],
               correction=False).pvalue on the merged bins (two-sample), or
               scipy.stats.chisquare(live, n * shares) with an exact reference
* psi, js      scipy.stats.chi2.sf of the scaled statistic on the merged bins
               (the documented formulas, computed with NumPy: live shares
               smoothed by one value for psi, half a value for js)
* ks           scipy.stats.kstwobign.sf at Stephens' corrected statistic

The bin merging is written here from its description in docs/drift.md
("Significance"), not translated from the Rust.
"""

import json
import os

import numpy as np
import scipy
from scipy import stats

MIN_EXPECTED = 10.0
# Live values added to every merged bin: one for PSI (Laplace), half for JS.
PSI_PSEUDO = 1.0
HALF = 0.5
SEED = 20261205
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                   "significance_cases.json")


def groups(shares, size):
    """Neighbouring bins in groups expecting >= MIN_EXPECTED values each."""
    out, cur, filled = [], [], 0.0
    for i, s in enumerate(shares):
        cur.append(i)
        filled += size * s
        if filled >= MIN_EXPECTED:
            out.append(cur)
            cur, filled = [], 0.0
    if cur:
        if out:
            out[-1].extend(cur)
        else:
            out.append(cur)
    return out


def pvalue(method, ref, live, m):
    ref = np.asarray(ref, float)
    live = np.asarray(live, float)
    shares = ref / ref.sum()
    n = live.sum()
    n_eff = n if m is None else n * m / (n + m)
    if method == "ks":
        d = np.max(np.abs(np.cumsum(live / n)[:-1] - np.cumsum(shares)[:-1]))
        root = np.sqrt(n_eff)
        return float(stats.kstwobign.sf((root + 0.12 + 0.11 / root) * d))
    g = groups(shares, n if m is None else min(n, m))
    k = len(g)
    if k < 2:
        return 1.0
    r = np.array([shares[i].sum() for i in g])
    c = np.array([live[i].sum() for i in g])
    if method == "chi2_pvalue":
        if m is None:
            return float(stats.chisquare(c, n * r).pvalue)
        table = np.array([c, r * m])
        return float(stats.chi2_contingency(table, correction=False).pvalue)
    if method == "psi":
        lsm = (c + PSI_PSEUDO) / (n + PSI_PSEUDO * k)
        x = n_eff * np.sum((lsm - r) * np.log(lsm / r))
    else:
        lsm = (c + HALF) / (n + HALF * k)
        mid = (r + lsm) / 2
        js2 = (np.sum(r * np.log2(r / mid)) + np.sum(lsm * np.log2(lsm / mid))) / 2
        x = 8 * np.log(2) * n_eff * js2
    return float(stats.chi2.sf(x, k - 1))


def main():
    rng = np.random.default_rng(SEED)
    kolmogorov = [{"x": x, "sf": float(stats.kstwobign.sf(x))}
                  for x in [0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 0.99, 1.0, 1.2, 1.5,
                            2.0, 3.0, 4.0, 6.0]]
    cases = []
    normal = stats.norm.cdf([-3, -1.2816, -0.8416, -0.5244, -0.2533, 0, 0.2533,
                             0.5244, 0.8416, 1.2816, 3])
    ref12 = np.diff(np.concatenate([[0], normal, [1]]))
    cat = np.array([0.55, 0.2, 0.12, 0.08, 0.04, 0.01])
    for name, ref in [("normal12", ref12), ("categorical6", cat)]:
        for n in [8, 40, 300, 20000]:
            for shift in [0.0, 0.3]:
                p = ref * np.exp(shift * np.arange(len(ref)) / len(ref))
                live = rng.multinomial(n, p / p.sum())
                for m in [None, 5000]:
                    for method in ["psi", "js", "ks", "chi2_pvalue"]:
                        if name == "categorical6" and method == "ks":
                            continue
                        cases.append({
                            "name": f"{name} n={n} shift={shift} m={m} {method}",
                            "method": method,
                            "reference": [float(x) for x in ref],
                            "live": [int(x) for x in live],
                            "m": m,
                            "pvalue": pvalue(method, ref, live, m),
                        })
    out = {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "kolmogorov": kolmogorov,
        "pvalues": cases,
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} p-values and {len(kolmogorov)} Kolmogorov values to {OUT}")


if __name__ == "__main__":
    main()
