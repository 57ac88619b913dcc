#!/usr/bin/env python3
"""How often FeatureDrift is true with no drift, and how soon it is true
after a real one: the real binary, many model versions at once.

    cargo build --release
    python3 bench/drift_calibration.py [--binary target/release/model-exporter]
        [--rounds 20] [--set tutorial|heavy|both] [--seed 1] [--max-samples N]

What it does (docs/drift.md, "Calibration"):

1. Training data of 10,000 rows per feature set, as in the tutorial
   (age N(35, 10), income N(50000, 20000), amount N(100, 50), repeated
   cyclically up to 50 features) or heavy-tailed and discrete (amount
   log-normal(4, 1), items Poisson(3), score 50 + 10 t(3)); the baseline is
   made by `model-exporter baseline` (10 quantile bins).
2. The exporter runs with rules.yaml giving every model that baseline and
   four rules over a 5 min window with `min_samples: 0` and `for: 0`, so an
   alert is active exactly when the condition holds on the window:
   FeatureDrift as built in (`psi(feature.*) > 0.2`, `significance: 1%`,
   `max_samples` as in the repository's rules.yaml, or --max-samples),
   WholeWindow (the same without `max_samples`, the rule before it),
   PsiOnly (`psi(feature.*) > 0.2`, the rule before significance) and a
   sentinel rule.
3. No drift: each round sends, over one unix socket, independent windows of
   n values (n = 5 ... 20,000) for models of F features (F = 1, 10, 50),
   each model its own independent trial (its own name, so its window holds
   its own values only); each round has an exporter of its own, so the
   models of earlier rounds cost nothing; it waits until
   the exporter counts every event sent as applied
   (model_exporter_events_received_total + _rejected_total), then sends a
   sentinel model's error, which fires the sentinel rule once the rules
   have been evaluated after everything before it; then it reads
   /api/v1/alerts. A model is a false alarm when FeatureDrift (PsiOnly) is
   active on any of its features. A round takes far less than the window,
   so no trial's values have left its window when it is read.
4. Detection: models receive the drifted distribution (every feature's
   mean +20%: normal features shifted, log-normal scaled, Poisson rate
   times 1.2, t shifted) in steps of 25 events, after 0, 1,000 or 10,000
   undrifted events in the same window; the delay is the number of drifted
   events sent when FeatureDrift (and WholeWindow) first holds for any
   feature of the model.

Prints Markdown tables. Deterministic for a given --seed (NumPy generator):
every window holds exactly what was sent for it when it is read, so the
verdicts do not depend on the exporter's timing (a round slower than the
window would break that; the script stops with an error then).
"""

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

WINDOW_S = 300
EVAL = "250ms"
SIZES = [5, 30, 100, 1000, 20000]
FEATURES = [1, 10, 50]
# Independent models per (n, F) and round: more where a trial is cheap.
REPLICATES = {
    5: {1: 100, 10: 40, 50: 10},
    30: {1: 100, 10: 40, 50: 10},
    100: {1: 60, 10: 20, 50: 6},
    1000: {1: 20, 10: 6, 50: 2},
    20000: {1: 2, 10: 1, 50: 1},
}
TRAIN_ROWS = 10_000
POOL = 400_000
# Undrifted events in the window before the drift starts (detection).
BEFORE = [0, 1000, 10000]
RULES = ("FeatureDrift", "WholeWindow", "PsiOnly")


def built_in_max_samples(path):
    """`max_samples` of FeatureDrift in the repository's rules.yaml."""
    rule = None
    with open(path) as f:
        for line in f:
            t = line.strip()
            if t.startswith("- alert:"):
                rule = t.split(":", 1)[1].strip()
            elif rule == "FeatureDrift" and t.startswith("max_samples:"):
                return int(t.split(":", 1)[1].split("#")[0])
    sys.exit(f"{path}: FeatureDrift has no max_samples")


class FeatureSet:
    """Named distributions, cycled to make F features; drift: mean +20%."""

    def __init__(self, name, kinds):
        self.name = name
        self.kinds = kinds

    def columns(self, f):
        return [f"{self.kinds[i % len(self.kinds)][0]}_{i}" for i in range(f)]

    def draw(self, rng, i, size, drifted=False):
        kind = self.kinds[i % len(self.kinds)]
        return kind[1](rng, size, drifted)


def normal(mean, sd):
    return lambda rng, n, d: rng.normal(mean * (1.2 if d else 1.0), sd, n)


def lognormal(mu, sigma):
    # mean exp(mu + sigma^2/2); +20%: scale by 1.2
    return lambda rng, n, d: rng.lognormal(mu, sigma, n) * (1.2 if d else 1.0)


def poisson(lam):
    return lambda rng, n, d: rng.poisson(lam * (1.2 if d else 1.0), n).astype(float)


def student(loc, scale, df):
    return lambda rng, n, d: loc * (1.2 if d else 1.0) + scale * rng.standard_t(df, n)


SETS = {
    "tutorial": FeatureSet(
        "tutorial",
        [("age", normal(35, 10)), ("income", normal(50000, 20000)), ("amount", normal(100, 50))],
    ),
    "heavy": FeatureSet(
        "heavy",
        [("amount", lognormal(4, 1)), ("items", poisson(3)), ("score", student(50, 10, 3))],
    ),
}


def fmt(values, discrete):
    if discrete:
        return [str(int(v)) for v in values]
    return [f"{v:.6g}" for v in values]


class Pools:
    """Pre-formatted values of each feature, drawn from its distribution."""

    def __init__(self, fs, rng, drifted):
        self.pools = []
        for i in range(len(fs.kinds)):
            v = fs.draw(rng, i, POOL, drifted)
            discrete = fs.kinds[i][0] == "items"
            self.pools.append(np.array(fmt(v, discrete), dtype=object))

    def lines(self, rng, model, columns, n):
        k = len(self.pools)
        picks = [self.pools[i % k][rng.integers(0, POOL, n)] for i in range(len(columns))]
        keys = [f'"{c}":' for c in columns]
        head = '{"model":"' + model + '","features":{'
        out = []
        for row in range(n):
            out.append(head + ",".join(keys[j] + picks[j][row] for j in range(len(columns))) + "}}\n")
        return "".join(out)


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read().decode()


def active(web):
    """(alertname, model, feature) of every active alert."""
    data = json.loads(get(f"{web}/api/v1/alerts"))["data"]["alerts"]
    return [(a["labels"]["alertname"], a["labels"]["model"], a["labels"].get("feature")) for a in data]


class Exporter:
    def __init__(self, binary, workdir, baseline, max_samples):
        self.dir = workdir
        rules = os.path.join(workdir, "rules.yaml")
        with open(rules, "w") as f:
            f.write(
                f"""defaults: {{window: {WINDOW_S}s, evaluation_interval: {EVAL}, min_samples: 0}}
models:
  "*":
    baseline: {baseline}
groups:
  - name: ml
    rules:
      - alert: FeatureDrift
        expr: psi(feature.*) > 0.2
        significance: 1%
        max_samples: {max_samples}
      - alert: WholeWindow
        expr: psi(feature.*) > 0.2
        significance: 1%
      - alert: PsiOnly
        expr: psi(feature.*) > 0.2
      - alert: Sentinel
        expr: error_rate > 50%
"""
            )
        self.sock = os.path.join(tempfile.mkdtemp(dir=workdir), "events.sock")
        self.proc = subprocess.Popen(
            [binary, "--config.file", rules, "--web.listen-address", "127.0.0.1:0",
             "--events.listen", f"unix://{self.sock}", "--limits.models", "5000",
             "--log.format", "json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.web = None
        deadline = time.time() + 30
        while time.time() < deadline and self.web is None:
            line = self.proc.stderr.readline()
            if not line:
                time.sleep(0.05)
                continue
            try:
                fields = json.loads(line).get("fields", {})
            except ValueError:
                continue
            if fields.get("message") == "serving HTTP":
                self.web = "http://" + fields["address"]
        if self.web is None:
            self.stop()
            sys.exit("the exporter did not report its address")
        while not os.path.exists(self.sock):
            time.sleep(0.05)

    sent = 0

    def send(self, payload):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        s.sendall(payload.encode())
        s.close()
        self.sent += payload.count("\n")

    def counted(self):
        """Events the exporter has applied or rejected so far."""
        total = 0.0
        for line in get(f"{self.web}/metrics").splitlines():
            if line.startswith(("model_exporter_events_received_total{",
                                "model_exporter_events_rejected_total{")) \
                    and 'type="client"' not in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def settle(self, tag):
        """Waits until every event sent so far is applied, then sends a
        sentinel error and waits until the sentinel rule is active: the rules
        were evaluated after every earlier event was applied. Returns the
        active alerts then."""
        deadline = time.time() + 600
        while self.counted() < self.sent:
            if time.time() > deadline:
                sys.exit(f"{self.sent} events sent, {self.counted()} applied after 600 s")
            time.sleep(0.2)
        self.send('{"model":"sentinel_' + tag + '","error":"x"}\n')
        deadline = time.time() + 120
        while time.time() < deadline:
            alerts = active(self.web)
            if ("Sentinel", "sentinel_" + tag, None) in alerts:
                return alerts
            time.sleep(0.05)
        sys.exit(f"sentinel {tag} never fired")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wilson_upper(k, n, z=1.96):
    if n == 0:
        return float("nan")
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + spread) / (1 + z * z / n)


def run_set(args, fs, binary, rng):
    work = tempfile.mkdtemp(prefix=f"drift-cal-{fs.name}-")
    cols = fs.columns(max(FEATURES))
    train = os.path.join(work, "train.csv")
    data = [fs.draw(rng, i, TRAIN_ROWS) for i in range(len(cols))]
    with open(train, "w") as f:
        f.write(",".join(cols) + "\n")
        for row in range(TRAIN_ROWS):
            f.write(",".join(f"{data[i][row]:.6g}" for i in range(len(cols))) + "\n")
    baseline = os.path.join(work, "baseline.json")
    subprocess.run([binary, "baseline", "--input", train, "--out", baseline], check=True,
                   stdout=subprocess.DEVNULL)
    clean = Pools(fs, rng, False)
    drifted = Pools(fs, rng, True)
    e = None
    try:
        # --- no drift -------------------------------------------------------
        trials = {(n, f): 0 for n in SIZES for f in FEATURES}
        alarms = {(n, f, r): 0 for n in SIZES for f in FEATURES for r in RULES}
        started = time.time()
        for rnd in range(args.rounds):
            payload = []
            models = []
            round_started = time.time()
            e = Exporter(binary, work, baseline, args.max_samples)
            for n in SIZES:
                for f in FEATURES:
                    for k in range(REPLICATES[n][f]):
                        model = f"r{rnd}_n{n}_f{f}_{k}"
                        models.append((model, n, f))
                        payload.append(clean.lines(rng, model, cols[:f], n))
            e.send("".join(payload))
            alerts = e.settle(f"null{rnd}")
            if time.time() - round_started > WINDOW_S / 2:
                sys.exit(f"round {rnd} took {time.time() - round_started:.0f}s, too close to "
                         f"the {WINDOW_S}s window: its first windows may have lost values")
            fired = {(a, m) for a, m, _ in alerts}
            for model, n, f in models:
                trials[(n, f)] += 1
                for rule in RULES:
                    if (rule, model) in fired:
                        alarms[(n, f, rule)] += 1
            e.stop()
            e = None
            print(f"[{fs.name}] round {rnd + 1}/{args.rounds} done at {time.time() - started:.0f}s",
                  file=sys.stderr)
        # --- detection ------------------------------------------------------
        step, most, reps = 25, 1500, args.detection_models
        delays = {}
        for before in BEFORE:
            for f in FEATURES:
                for rule in RULES[:2]:
                    delays[(rule, before, f)] = []
            models = [(f"d{before}_f{f}_{k}", f) for f in FEATURES for k in range(reps)]
            phase_started = time.time()
            e = Exporter(binary, work, baseline, args.max_samples)
            for m, f in models:
                # In pieces: 10,000 events of 50 features are 10 MB.
                for chunk in range(0, before, 1000):
                    e.send(clean.lines(rng, m, cols[:f], min(1000, before - chunk)))
            # Pending per rule; a model gets drifted events while a rule
            # has not fired on it.
            pending = {rule: dict(models) for rule in RULES[:2]}
            sent = 0
            while any(pending.values()) and sent < most:
                waiting = {m: f for p in pending.values() for m, f in p.items()}
                e.send("".join(drifted.lines(rng, m, cols[:f], step) for m, f in models
                               if m in waiting))
                sent += step
                alerts = e.settle(f"det{before}_{sent}")
                for rule, p in pending.items():
                    fired = {m for a, m, _ in alerts if a == rule}
                    for m in [m for m in p if m in fired]:
                        delays[(rule, before, p.pop(m))].append(sent)
                    # A model no rule waits for any more gets no more events.
                if time.time() - phase_started > WINDOW_S / 2:
                    sys.exit("the detection run is too close to the window: "
                             "its undrifted values may have left it")
            for rule, p in pending.items():
                for m, f in p.items():
                    delays[(rule, before, f)].append(float("inf"))
            print(f"[{fs.name}] detection after {before} undrifted events done in "
                  f"{time.time() - phase_started:.0f}s", file=sys.stderr)
            e.stop()
            e = None
        return trials, alarms, delays
    finally:
        if e is not None:
            e.stop()


def report(fs, trials, alarms, delays, max_samples):
    print(f"\n### {fs.name}\n")
    print(f"No drift: share of models with FeatureDrift (max_samples: {max_samples}) active, "
          "with the 95% upper bound (Wilson) of its rate; WholeWindow: the same rule "
          "without max_samples; PsiOnly: PSI > 0.2 alone\n")
    print("| n | F | trials | FeatureDrift | upper 95% | WholeWindow | upper 95% | PsiOnly |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in SIZES:
        for f in FEATURES:
            t = trials[(n, f)]
            a = alarms[(n, f, "FeatureDrift")]
            w = alarms[(n, f, "WholeWindow")]
            p = alarms[(n, f, "PsiOnly")]
            print(f"| {n} | {f} | {t} | {a / t:.2%} ({a}) | {wilson_upper(a, t):.2%} "
                  f"| {w / t:.2%} ({w}) | {wilson_upper(w, t):.2%} | {p / t:.1%} |")
    pooled = sum(alarms[(n, f, "FeatureDrift")] for n in SIZES for f in FEATURES)
    total = sum(trials.values())
    print(f"\nFeatureDrift pooled: {pooled} of {total} models ({pooled / total:.2%}, "
          f"upper 95% {wilson_upper(pooled, total):.2%})")
    reps = len(next(iter(delays.values())))
    print("\nDetection: drifted events sent (steps of 25) until the rule holds "
          f"on some feature, {reps} models each\n")
    print(f"| undrifted events before | F | FeatureDrift (max_samples: {max_samples}) median "
          "| max | WholeWindow median | max |")
    print("|---:|---:|---:|---:|---:|---:|")
    show = lambda x: "not within 1500" if math.isinf(x) else str(int(x))
    for before in BEFORE:
        for f in FEATURES:
            row = [str(before), str(f)]
            for rule in RULES[:2]:
                d = sorted(delays[(rule, before, f)])
                row += [show(d[len(d) // 2]), show(d[-1])]
            print("| " + " | ".join(row) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/model-exporter")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--set", choices=["tutorial", "heavy", "both"], default="both")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)),
                    help="window sizes n, a subset of the default")
    ap.add_argument("--features", default=",".join(map(str, FEATURES)),
                    help="features per model F, a subset of the default")
    ap.add_argument("--detection-models", type=int, default=10,
                    help="models per F in the detection runs")
    ap.add_argument("--max-samples", type=int, default=None,
                    help="FeatureDrift's max_samples (default: as in rules.yaml)")
    args = ap.parse_args()
    if args.max_samples is None:
        here = os.path.dirname(os.path.abspath(__file__))
        args.max_samples = built_in_max_samples(os.path.join(here, "..", "rules.yaml"))
    print(f"FeatureDrift max_samples: {args.max_samples}, seed {args.seed}, "
          f"{args.rounds} rounds", file=sys.stderr)
    SIZES[:] = [int(x) for x in args.sizes.split(",")]
    FEATURES[:] = [int(x) for x in args.features.split(",")]
    rng = np.random.default_rng(args.seed)
    names = ["tutorial", "heavy"] if args.set == "both" else [args.set]
    for name in names:
        fs = SETS[name]
        trials, alarms, delays = run_set(args, fs, args.binary, rng)
        report(fs, trials, alarms, delays, args.max_samples)


if __name__ == "__main__":
    main()
