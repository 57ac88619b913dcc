#!/usr/bin/env python3
"""How often the built-in FeatureDrift rule is true with no drift, by
simulation of its decision: many more trials per cell than the real-binary
benchmark (bench/drift_calibration.py) can afford.

    cargo build --release
    python3 bench/significance_tail.py [--trials 20000] [--references 10]
        [--set tutorial|heavy|both] [--seed 1]
    python3 bench/significance_tail.py --validate    # against the binary

What it does (docs/drift.md, "Calibration"):

1. References: `--references` independent training sets of 10,000 rows per
   feature set, drawn as bench/drift_calibration.py draws them (tutorial:
   age N(35, 10), income N(50000, 20000), amount N(100, 50); heavy: amount
   log-normal(4, 1), items Poisson(3), score 50 + 10 t(3); cycled to 50
   features, every column its own draw, values written with 6 significant
   digits), each made into a baseline by `model-exporter baseline` (the
   release binary): the bin edges, proportions and count the sidecar uses.
2. Windows: for each window size n and number of features F, `--trials`
   models (split evenly over the references), each feature's window the
   bin counts of n values drawn from the feature's true distribution
   (multinomial with the true probability of each bin, the values rounded
   to 6 significant digits as the benchmark sends them).
3. The decision, as src/stats (drift.rs, reference.rs, significance.rs)
   makes it: PSI against the reference shares (every empty bin one value in
   `count + z`, live zeros 1e-4); the PSI p-value (bins merged into groups
   expecting >= 10 values of min(n, m), live shares smoothed by one
   value, `n_eff * PSI` against chi-square with k - 1 df, 1 below two
   groups); Holm across the model's F features; FeatureDrift when some
   feature has PSI > 0.2 and adjusted p < 0.01.

Prints a Markdown table per feature set: FeatureDrift's rate with its 95%
Wilson upper bound, and the share of models whose smallest p-value is
below 0.01 / F (the far tail Holm's first step reads) next to that level;
then, with `--power-trials`, the share of models flagged when every feature
has drifted (mean +20%, as the benchmark drifts them) in a window of 25 to
100 values. `--min-expected` and `--pseudo-count` compute the p-value with
other constants than the sidecar's, to compare candidates.

`--validate` checks the re-implementation against the real binary first:
it runs the exporter on the first reference's baseline, sends windows of
drawn values (undrifted, and drifted so that some fire), and compares,
feature by feature, PSI, the p-value and the adjusted p-value of /metrics
and the FeatureDrift alerts of /api/v1/alerts with what this script
computes from the same values.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy import special, stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drift_calibration as cal  # noqa: E402

MIN_EXPECTED = 10.0
PSI_PSEUDO_COUNT = 1.0
PSI_EPSILON = 1e-4
THRESHOLD = 0.2
ALPHA = 0.01
SIZES = [5, 10, 20, 30, 50, 75, 100, 150, 300, 1000, 20000]
POWER_SIZES = [25, 50, 75, 100]
# The sidecar's constants; --min-expected and --pseudo-count try others.
OPTIONS = {"min_expected": MIN_EXPECTED, "pseudo_count": PSI_PSEUDO_COUNT}
FEATURES = [1, 10, 50]


def seq_sum(xs):
    """Left-to-right sum, as Rust's `iter().sum()` (Python's `sum` of
    floats compensates since 3.12)."""
    total = 0.0
    for x in xs:
        total += x
    return total


# --- the sidecar's computation, from the documentation and src/stats ------

def merge_bins(reference, size, min_expected=MIN_EXPECTED):
    """Group of each bin and the number of groups (significance.rs)."""
    total = seq_sum(reference)
    group, groups, filled = [], 0, 0.0
    for r in reference:
        group.append(groups)
        filled += size * r / total
        if filled >= min_expected:
            groups += 1
            filled = 0.0
    if groups == 0:
        return [0] * len(reference), 1
    group = [min(g, groups - 1) for g in group]
    return group, groups


def reference_shares(proportions, count):
    """Shares PSI compares with (drift.rs reference_shares)."""
    total = seq_sum(proportions)
    empty = sum(1 for p in proportions if p == 0.0)
    m = float(count)
    return np.array([(m * (p / total) if p > 0.0 else 1.0) / (m + empty) for p in proportions])


def psi_statistic(shares, counts):
    """PSI of live counts (trials x bins) against shares (drift.rs psi)."""
    r = shares / seq_sum(shares)
    r = r / seq_sum(r)
    n = counts.sum(axis=1, keepdims=True).astype(float)
    l = counts / n
    l = np.where(l > 0.0, l, PSI_EPSILON)
    l = l / l.sum(axis=1, keepdims=True)
    return np.maximum(((l - r) * np.log(l / r)).sum(axis=1), 0.0)


class Feature:
    """One feature's reference as the sidecar holds it, and the grouping
    and shares that depend on the window size only."""

    def __init__(self, edges, proportions, count):
        self.edges = np.asarray(edges, float)
        self.proportions = [float(p) for p in proportions]
        self.count = int(count)
        self.shares = reference_shares(self.proportions, self.count)
        self._groups = {}

    def groups(self, n):
        if n not in self._groups:
            smaller = float(min(n, self.count))
            group, k = merge_bins(self.proportions, smaller, OPTIONS["min_expected"])
            total = seq_sum(self.proportions)
            r = [0.0] * k
            for i, g in enumerate(group):
                r[g] += self.proportions[i] / total
            onehot = np.zeros((len(group), k))
            onehot[np.arange(len(group)), group] = 1.0
            self._groups[n] = (onehot, np.array(r), k)
        return self._groups[n]

    def pvalue(self, counts, n):
        """PSI p-value of each row of counts (all rows n values)."""
        onehot, r, k = self.groups(n)
        if k < 2:
            return np.ones(counts.shape[0])
        m = float(self.count)
        n_eff = n * m / (n + m)
        c = counts @ onehot
        pseudo = OPTIONS["pseudo_count"]
        l = (c + pseudo) / (n + pseudo * k)
        keep = r > 0.0
        psi = ((l[:, keep] - r[keep]) * np.log(l[:, keep] / r[keep])).sum(axis=1)
        statistic = n_eff * np.maximum(psi, 0.0)
        return special.gammaincc((k - 1) / 2.0, statistic / 2.0)

    def psi(self, counts):
        return psi_statistic(self.shares, counts)

    def bin_of(self, values):
        """drift.rs bin_index: the number of edges strictly below x."""
        return np.searchsorted(self.edges, values, side="left")


def holm(p):
    """Holm-adjusted p-values of each row (significance.rs holm)."""
    f = p.shape[1]
    order = np.argsort(p, axis=1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=1)
    adjusted = np.minimum((f - np.arange(f)) * sorted_p, 1.0)
    adjusted = np.maximum.accumulate(adjusted, axis=1)
    out = np.empty_like(p)
    np.put_along_axis(out, order, adjusted, axis=1)
    return out


def verdict(psi, p):
    """FeatureDrift per feature: PSI > 0.2 and Holm-adjusted p < 0.01."""
    return (psi > THRESHOLD) & (holm(p) < ALPHA)


# --- the true distributions ----------------------------------------------

def rounding_half_step(e):
    """Half the step of 6 significant digits at the magnitude of e."""
    e = np.abs(np.asarray(e, float))
    exponent = np.floor(np.log10(np.where(e > 0, e, 1.0)))
    return 0.5 * 10.0 ** (exponent - 5)


def true_cdf(set_name, kind, x, drifted=False):
    """P(value <= x) of the benchmark's distributions; drifted: every mean
    +20% as the benchmark drifts them."""
    g = 1.2 if drifted else 1.0
    if kind == "age":
        return stats.norm.cdf(x, 35 * g, 10)
    if kind == "income":
        return stats.norm.cdf(x, 50000 * g, 20000)
    if kind == "amount" and set_name == "tutorial":
        return stats.norm.cdf(x, 100 * g, 50)
    if kind == "amount":
        return stats.lognorm.cdf(x, 1.0, scale=math.exp(4) * g)
    if kind == "items":
        return stats.poisson.cdf(np.floor(x), 3 * g)
    if kind == "score":
        return stats.t.cdf((x - 50 * g) / 10, 3)
    raise ValueError(kind)


def bin_probabilities(set_name, kind, edges, drifted=False):
    """Probability of each bin for a value drawn from the true distribution
    and written with 6 significant digits (a value that rounds onto an edge
    goes to the bin below it)."""
    if kind == "items":
        cut = true_cdf(set_name, kind, edges, drifted)
    else:
        cut = true_cdf(set_name, kind, edges + rounding_half_step(edges), drifted)
    p = np.diff(np.concatenate([[0.0], cut, [1.0]]))
    p = np.maximum(p, 0.0)
    return p / p.sum()


# --- references made by the binary ---------------------------------------

def make_reference(binary, fs, rng, work, tag, features):
    cols = fs.columns(features)
    data = [fs.draw(rng, i, cal.TRAIN_ROWS) for i in range(features)]
    train = os.path.join(work, f"train_{tag}.csv")
    with open(train, "w") as f:
        f.write(",".join(cols) + "\n")
        for row in range(cal.TRAIN_ROWS):
            f.write(",".join(f"{data[i][row]:.6g}" for i in range(features)) + "\n")
    path = os.path.join(work, f"baseline_{tag}.json")
    subprocess.run([binary, "baseline", "--input", train, "--out", path], check=True,
                   stdout=subprocess.DEVNULL)
    with open(path) as f:
        doc = json.load(f)
    feats = []
    for c in cols:
        e = doc["features"][c]
        feats.append(Feature(e["edges"], e["proportions"], e["count"]))
    kinds = [fs.kinds[i % len(fs.kinds)][0] for i in range(features)]
    probs = [bin_probabilities(fs.name, k, ft.edges) for k, ft in zip(kinds, feats)]
    drifted = [bin_probabilities(fs.name, k, ft.edges, True) for k, ft in zip(kinds, feats)]
    return path, cols, feats, probs, drifted


# --- simulation ----------------------------------------------------------

def simulate(fs, refs, sizes, features, trials, rng):
    """Per (n, F): trials, FeatureDrift alarms, models whose smallest
    p-value is below 0.01 / F."""
    out = {}
    per_ref = [trials // len(refs) + (1 if i < trials % len(refs) else 0)
               for i in range(len(refs))]
    for n in sizes:
        for f in features:
            alarms = tail = 0
            for (_, _, feats, probs, _), t in zip(refs, per_ref):
                if t == 0:
                    continue
                psi = np.empty((t, f))
                p = np.empty((t, f))
                for j in range(f):
                    counts = rng.multinomial(n, probs[j], size=t)
                    psi[:, j] = feats[j].psi(counts)
                    p[:, j] = feats[j].pvalue(counts, n)
                alarms += int(verdict(psi, p).any(axis=1).sum())
                tail += int((p.min(axis=1) < ALPHA / f).sum())
            out[(n, f)] = (trials, alarms, tail)
    return out


def simulate_power(refs, sizes, features, trials, rng):
    """Per (n, F): models whose every feature drifted (mean +20%) in a
    window of n values, and how many of them FeatureDrift flags."""
    out = {}
    per_ref = [trials // len(refs) + (1 if i < trials % len(refs) else 0)
               for i in range(len(refs))]
    for n in sizes:
        for f in features:
            flagged = 0
            for (_, _, feats, _, drifted), t in zip(refs, per_ref):
                if t == 0:
                    continue
                psi = np.empty((t, f))
                p = np.empty((t, f))
                for j in range(f):
                    counts = rng.multinomial(n, drifted[j], size=t)
                    psi[:, j] = feats[j].psi(counts)
                    p[:, j] = feats[j].pvalue(counts, n)
                flagged += int(verdict(psi, p).any(axis=1).sum())
            out[(n, f)] = (trials, flagged)
    return out


def report_power(name, results, sizes, features, trials):
    print(f"\nDrift in every feature (mean +20%), {trials:,} models per cell: share "
          "flagged by FeatureDrift\n")
    print("| n | " + " | ".join(f"F = {f}" for f in features) + " |")
    print("|---:|" + "---:|" * len(features))
    for n in sizes:
        print(f"| {n} | " + " | ".join(f"{results[(n, f)][1] / results[(n, f)][0]:.1%}"
                                      for f in features) + " |")
    sys.stdout.flush()


def report(name, results, sizes, features, args):
    print(f"\n#### {name}\n")
    print(f"No drift, simulated: {args.trials:,} models per cell over {args.references} "
          f"references (seed {args.seed}); FeatureDrift's rate with its 95% upper bound "
          "(Wilson), and the share of models with some p-value below 0.01 / F\n")
    print("| n | F | FeatureDrift | upper 95% | min p < 0.01/F | upper 95% |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        for f in features:
            t, a, tl = results[(n, f)]
            print(f"| {n} | {f} | {a / t:.3%} ({a}) | {cal.wilson_upper(a, t):.3%} "
                  f"| {tl / t:.3%} | {cal.wilson_upper(tl, t):.3%} |")
    total = sum(v[0] for v in results.values())
    fired = sum(v[1] for v in results.values())
    worst = max(results, key=lambda key: cal.wilson_upper(results[key][1], results[key][0]))
    print(f"\nPooled: {fired} of {total:,} ({fired / total:.3%}); largest upper bound "
          f"{cal.wilson_upper(results[worst][1], results[worst][0]):.3%} at n={worst[0]}, "
          f"F={worst[1]}")
    sys.stdout.flush()


# --- validation against the binary ---------------------------------------

LINE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')
LABEL = re.compile(r'(\w+)="([^"]*)"')


def scrape(web):
    """{(name, model, feature, method): value} of the drift gauges."""
    out = {}
    for line in cal.get(f"{web}/metrics").splitlines():
        m = LINE.match(line)
        if not m or m.group(1) not in ("model_feature_drift", "model_feature_drift_pvalue",
                                        "model_feature_drift_pvalue_adjusted"):
            continue
        labels = dict(LABEL.findall(m.group(2)))
        if labels.get("method") != "psi":
            continue
        out[(m.group(1), labels["model"], labels["feature"])] = float(m.group(3))
    return out


def validate(binary, fs, ref, rng, work):
    path, cols, feats, _, _ = ref
    e = cal.Exporter(binary, work, path)
    try:
        models = []
        payload = []
        for n in (20, 30, 50, 100, 300, 1000):
            for f in (1, 10, 50):
                for drifted in (False, True):
                    for rep in range(2):
                        model = f"v_n{n}_f{f}_{'d' if drifted else 'c'}{rep}"
                        # Drifted: half the features shifted, so that the
                        # adjusted p-values mix small and large ones.
                        vals = [fs.draw(rng, j, n, drifted and j % 2 == 0) for j in range(f)]
                        text = [cal.fmt(v, fs.kinds[j % len(fs.kinds)][0] == "items")
                                for j, v in enumerate(vals)]
                        head = '{"model":"' + model + '","features":{'
                        payload.append("".join(
                            head + ",".join(f'"{cols[j]}":{text[j][row]}' for j in range(f)) + "}}\n"
                            for row in range(n)))
                        models.append((model, n, f, [np.array(t, float) for t in text]))
        e.send("".join(payload))
        alerts = e.settle("validate")
        metrics = scrape(e.web)
        fired = {(m, ft) for a, m, ft in alerts if a == "FeatureDrift"}
        worst = {"psi": 0.0, "p": 0.0, "adjusted": 0.0}
        disagree = compared = alarms = 0
        for model, n, f, values in models:
            psi = np.empty((1, f))
            p = np.empty((1, f))
            for j in range(f):
                counts = np.bincount(feats[j].bin_of(values[j]),
                                     minlength=len(feats[j].proportions))[None, :]
                psi[0, j] = feats[j].psi(counts)[0]
                p[0, j] = feats[j].pvalue(counts, n)[0]
            adjusted = holm(p)[0]
            mine = verdict(psi, p)[0]
            for j in range(f):
                key = (model, cols[j])
                theirs = [metrics[(name, model, cols[j])] for name in (
                    "model_feature_drift", "model_feature_drift_pvalue",
                    "model_feature_drift_pvalue_adjusted")]
                for label, a, b in zip(("psi", "p", "adjusted"), (psi[0, j], p[0, j],
                                                                  adjusted[j]), theirs):
                    rel = abs(a - b) / max(abs(b), 1e-300) if a != b else 0.0
                    worst[label] = max(worst[label], rel)
                compared += 1
                alarms += int(mine[j])
                if bool(mine[j]) != (key in fired):
                    disagree += 1
                    print(f"disagree: {key} psi {psi[0, j]} p {p[0, j]} adj {adjusted[j]} "
                          f"binary {theirs} alert {key in fired}", file=sys.stderr)
        print(f"validation ({fs.name}): {compared} features of {len(models)} models; largest "
              f"relative difference from the binary: PSI {worst['psi']:.1e}, p-value "
              f"{worst['p']:.1e}, adjusted {worst['adjusted']:.1e}; FeatureDrift on "
              f"{alarms} features here, {len(fired)} in the binary, {disagree} disagreements")
        return disagree == 0 and max(worst.values()) < 1e-9
    finally:
        e.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/model-exporter")
    ap.add_argument("--trials", type=int, default=20000)
    ap.add_argument("--references", type=int, default=10)
    ap.add_argument("--set", choices=["tutorial", "heavy", "both"], default="both")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--features", default=",".join(map(str, FEATURES)))
    ap.add_argument("--power-trials", type=int, default=2000,
                    help="models per cell of the detection table (0: none)")
    ap.add_argument("--min-expected", type=float, default=MIN_EXPECTED,
                    help="values each merged group expects (the sidecar's: %(default)s)")
    ap.add_argument("--pseudo-count", type=float, default=PSI_PSEUDO_COUNT,
                    help="live values added to each group (the sidecar's: %(default)s)")
    ap.add_argument("--validate", action="store_true",
                    help="compare with the binary's /metrics and alerts, then stop")
    args = ap.parse_args()
    OPTIONS["min_expected"] = args.min_expected
    OPTIONS["pseudo_count"] = args.pseudo_count
    sizes = [int(x) for x in args.sizes.split(",")]
    features = [int(x) for x in args.features.split(",")]
    names = ["tutorial", "heavy"] if args.set == "both" else [args.set]
    work = tempfile.mkdtemp(prefix="significance-tail-")
    ok = True
    for s, name in enumerate(names):
        fs = cal.SETS[name]
        rng = np.random.default_rng([args.seed, s])
        width = max(features) if not args.validate else 50
        refs = [make_reference(args.binary, fs, rng, work, f"{name}{i}", width)
                for i in range(1 if args.validate else args.references)]
        if args.validate:
            ok &= validate(args.binary, fs, refs[0], rng, work)
            continue
        started = time.time()
        results = simulate(fs, refs, sizes, features, args.trials, rng)
        report(name, results, sizes, features, args)
        if args.power_trials:
            power = simulate_power(refs, POWER_SIZES, features, args.power_trials, rng)
            report_power(name, power, POWER_SIZES, features, args.power_trials)
        print(f"({name}: {time.time() - started:.0f} s)", file=sys.stderr)
    if not ok:
        sys.exit("the simulation does not reproduce the binary")


if __name__ == "__main__":
    main()
