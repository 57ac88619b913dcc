#!/usr/bin/env python3
"""How often FeatureDrift is true with no drift, and how soon it is true
after a real one: the real binary, many model versions at once.

    cargo build --release
    python3 bench/drift_calibration.py [--binary target/release/model-exporter]
        [--rounds 20] [--set tutorial|heavy|both] [--seed 1]

What it does (docs/drift.md, "Calibration"):

1. Training data of 10,000 rows per feature set, as in the tutorial
   (age N(35, 10), income N(50000, 20000), amount N(100, 50), repeated
   cyclically up to 50 features) or heavy-tailed and discrete (amount
   log-normal(4, 1), items Poisson(3), score 50 + 10 t(3)); the baseline is
   made by `model-exporter baseline` (10 quantile bins).
2. The exporter runs with rules.yaml giving every model that baseline and
   three rules over a 5 min window with `min_samples: 0` and `for: 0`, so an
   alert is active exactly when the condition holds on the window:
   FeatureDrift as built in (`psi(feature.*) > 0.2`, `significance: 1%`),
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
   times 1.2, t shifted) in steps of 25 events, after 0 or 1,000 undrifted
   events in the same window; the delay is the number of drifted events
   sent when FeatureDrift first holds for any feature of the model.

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
    def __init__(self, binary, workdir, baseline):
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
        alarms = {(n, f, r): 0 for n in SIZES for f in FEATURES for r in ("FeatureDrift", "PsiOnly")}
        started = time.time()
        for rnd in range(args.rounds):
            payload = []
            models = []
            round_started = time.time()
            e = Exporter(binary, work, baseline)
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
                for rule in ("FeatureDrift", "PsiOnly"):
                    if (rule, model) in fired:
                        alarms[(n, f, rule)] += 1
            e.stop()
            e = None
            print(f"[{fs.name}] round {rnd + 1}/{args.rounds} done at {time.time() - started:.0f}s",
                  file=sys.stderr)
        # --- detection ------------------------------------------------------
        step, most, reps = 25, 1500, args.detection_models
        delays = {}
        for before in (0, 1000):
            for f in FEATURES:
                delays[(before, f)] = []
            models = [(f"d{before}_f{f}_{k}", f) for f in FEATURES for k in range(reps)]
            e = Exporter(binary, work, baseline)
            if before:
                e.send("".join(clean.lines(rng, m, cols[:f], before) for m, f in models))
            pending = dict(models)
            sent = 0
            phase_started = time.time()
            while pending and sent < most:
                e.send("".join(drifted.lines(rng, m, cols[:f], step) for m, f in pending.items()))
                sent += step
                alerts = e.settle(f"det{before}_{sent}")
                fired = {m for a, m, _ in alerts if a == "FeatureDrift"}
                for m in [m for m in pending if m in fired]:
                    delays[(before, pending.pop(m))].append(sent)
                if time.time() - phase_started > WINDOW_S / 2:
                    sys.exit("the detection run is too close to the window: "
                             "its undrifted values may have left it")
            for m, f in pending.items():
                delays[(before, f)].append(float("inf"))
            e.stop()
            e = None
        return trials, alarms, delays
    finally:
        if e is not None:
            e.stop()


def report(fs, trials, alarms, delays):
    print(f"\n### {fs.name}\n")
    print("No drift: share of models with FeatureDrift active (PsiOnly: PSI > 0.2 alone), "
          "with the 95% upper bound (Wilson) of FeatureDrift's rate\n")
    print("| n | F | trials | FeatureDrift | upper 95% | PsiOnly |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in SIZES:
        for f in FEATURES:
            t = trials[(n, f)]
            a = alarms[(n, f, "FeatureDrift")]
            p = alarms[(n, f, "PsiOnly")]
            print(f"| {n} | {f} | {t} | {a / t:.2%} ({a}) | {wilson_upper(a, t):.2%} | {p / t:.1%} |")
    print("\nDetection: drifted events sent (steps of 25) until FeatureDrift holds "
          f"on some feature, {len(next(iter(delays.values())))} models each\n")
    print("| undrifted events before | F | median | max |")
    print("|---:|---:|---:|---:|")
    for (before, f), d in sorted(delays.items()):
        d = sorted(d)
        med = d[len(d) // 2]
        show = lambda x: "not within 1500" if math.isinf(x) else str(int(x))
        print(f"| {before} | {f} | {show(med)} | {show(d[-1])} |")


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
    args = ap.parse_args()
    SIZES[:] = [int(x) for x in args.sizes.split(",")]
    FEATURES[:] = [int(x) for x in args.features.split(",")]
    rng = np.random.default_rng(args.seed)
    names = ["tutorial", "heavy"] if args.set == "both" else [args.set]
    for name in names:
        fs = SETS[name]
        trials, alarms, delays = run_set(args, fs, args.binary, rng)
        report(fs, trials, alarms, delays)


if __name__ == "__main__":
    main()
