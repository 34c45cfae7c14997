#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Holds cachemeter's exposition against the real tools.

usage: check_exposition.py [--promtool PATH] [--check NAME]... CORPUS_DIR

CORPUS_DIR is what conformance_corpus wrote: index.json naming the
registries, and per registry metrics.prom (Prometheus text 0.0.4),
metrics.om (OpenMetrics 1.0), metrics.json and expected.json (the values the
corpus program recorded from its own bookkeeping). Checks (default: all):

  promtool     `promtool check metrics` on metrics.prom. Exit 0 passes. Exit 3
               means lint findings; the only one accepted is "no help text"
               for a family the corpus registered with no or empty help
               (cm_*_new allows help=NULL on purpose). Any other finding, or
               any other exit status, fails. promtool is not run on
               metrics.om: `promtool check metrics` (2.42) only reads the
               0.0.4 text format and misreads OpenMetrics (foo_total and
               foo_created become separate untyped families; the valid
               OpenMetrics escape \\" in HELP is a 0.0.4 syntax error).
  prometheus   prometheus_client.parser on metrics.prom.
  openmetrics  prometheus_client.openmetrics.parser on metrics.om, plus a
               strict line grammar (that parser accepts e.g. an unescaped "
               in HELP, which the OpenMetrics ABNF forbids).
  json         json.loads on metrics.json, strict (no NaN/Infinity tokens),
               against the schema the JSON renderer documents.

Every check compares every sample with expected.json exactly: same set of
samples (none missing, none extra, none twice), floats equal bit for bit
(NaN by math.isnan). Two exceptions, both forced by the tools: the
OpenMetrics parser turns an integral token into a Python int, which loses the
sign of zero (so -0 vs 0 is only checked through the Prometheus parser and
JSON); and _created is a wall-clock time, so it is checked to lie in the
window the corpus program measured around the registry's creation (or last
reset) and its rendering. The window has no slack: the corpus and the library
read the same clock (std::chrono::system_clock, converted to double seconds
the same way) in one process, so only a backward step of the system clock
during the run could break the order.
Text values must be in shortest round-trip form and spell the non-finite
values NaN, +Inf, -Inf. Histograms must have strictly increasing le,
cumulative buckets and le="+Inf" equal to _count.

Exits 0 when everything matches, 1 with one line per mismatch otherwise.
"""
import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path

from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import \
    text_string_to_metric_families as parse_prometheus

CHECKS = ("promtool", "prometheus", "openmetrics", "json")
NON_FINITE = {"NaN", "+Inf", "-Inf"}
CREATED = "created"  # placeholder value of an expected _created sample


# ---- numbers -------------------------------------------------------------

def xfloat(s):
    """A double of expected.json: a string ("%.17g", NaN, +Inf, -Inf)."""
    return float(s)


def jnum(v):
    """A number of the library's JSON: a JSON number, or one of the strings
    "NaN", "+Inf", "-Inf" for what JSON cannot spell."""
    if isinstance(v, str) and v in NON_FINITE:
        return float(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    raise ValueError(f"{v!r} is neither a JSON number nor one of {sorted(NON_FINITE)}")


def same(expected, got):
    """Exact equality: NaN matches NaN, otherwise the same bits."""
    if isinstance(got, int):  # OpenMetrics parser: "-0" came back as int 0
        return not math.isnan(expected) and float(got) == expected
    if math.isnan(expected):
        return math.isnan(got)
    return expected.hex() == got.hex()


def float_key(x):
    return "nan" if math.isnan(x) else x.hex()


def significant_digits(token):
    mantissa = re.split(r"[eE]", token.lstrip("+-"))[0].replace(".", "")
    return len(mantissa.strip("0")) or 1


def token_problem(token):
    """Why a number token is not in the form the exposition rules ask."""
    if token in NON_FINITE:
        return None
    try:
        value = float(token)
    except ValueError:
        return f"{token!r} is not a number"
    if not math.isfinite(value):
        return f"{token!r}: non-finite values are spelled NaN, +Inf, -Inf"
    if significant_digits(token) > significant_digits(repr(value)):
        return f"{token!r} is not the shortest round-trip form ({repr(value)})"
    return None


# ---- expected samples ----------------------------------------------------

def sample_key(name, labels):
    items = []
    for k, v in labels.items():
        if k == "le":
            v = ("le", float_key(xfloat(v)))
        items.append((k, v))
    return name, tuple(sorted(items))


def show(key):
    name, labels = key
    return name + "{" + ",".join(f"{k}={v!r}" for k, v in labels) + "}"


def family_name(fam):
    """The family name both Python parsers report: a counter's without _total."""
    name = fam["name"]
    return name[:-len("_total")] if fam["type"] == "counter" else name


def expected_samples(exp, fmt):
    """{key: (family, value)} of required samples, and of optional ones."""
    required, optional = {}, {}
    for fam in exp["families"]:
        base, typ = family_name(fam), fam["type"]
        for s in fam["series"]:
            def put(name, value, extra=None, where=required):
                key = sample_key(name, {**s["labels"], **(extra or {})})
                if key in required or key in optional:
                    raise ValueError(f"expected.json names {show(key)} twice")
                where[key] = (base, value)

            if typ in ("counter", "gauge"):
                put(fam["name"], xfloat(s["value"]))
            else:
                for le, count in s["buckets"]:
                    put(fam["name"] + "_bucket", float(count), {"le": le})
                # OpenMetrics: _count and _sum together, or neither (expected.json
                # says which, from the spec's rules on negative sums and bounds).
                rule = s["openmetrics_count_sum"] if fmt == "openmetrics" else "required"
                if rule != "forbidden":
                    where = required if rule == "required" else optional
                    put(fam["name"] + "_count", float(s["count"]), where=where)
                    put(fam["name"] + "_sum", xfloat(s["sum"]), where=where)
            if fmt == "openmetrics" and typ in ("counter", "histogram"):
                put(base + "_created", CREATED)
    return required, optional


def check_expected_file(exp):
    """The corpus' own bookkeeping must be a valid histogram model."""
    errors = []
    for fam in exp["families"]:
        for s in fam.get("series", []):
            if fam["type"] != "histogram":
                continue
            counts = [c for _, c in s["buckets"]]
            if counts != sorted(counts) or counts[-1] != s["count"] or s["buckets"][-1][0] != "+Inf":
                errors.append(f"expected.json: bad histogram model in {fam['name']} {s['labels']}")
    return errors


# ---- comparison ------------------------------------------------------------

class Registry:
    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.name
        self.expected = json.loads((self.path / "expected.json").read_text("utf-8"))
        self.window = tuple(xfloat(t) for t in self.expected["created_window"])
        self.families = {family_name(f): f for f in self.expected["families"]}

    def text(self, file):
        data = (self.path / file).read_bytes()
        text = data.decode("utf-8")  # strict: invalid UTF-8 raises
        if text and not text.endswith("\n"):
            raise ValueError(f"{file} does not end with a newline")
        return text


def compare_samples(reg, fmt, actual):
    """actual: [(family, key, value)]. Returns the mismatches."""
    required, optional = expected_samples(reg.expected, fmt)
    errors, seen = [], set()
    for fam, key, value in actual:
        if key in seen:
            errors.append(f"{fmt}: sample {show(key)} appears twice")
            continue
        seen.add(key)
        want = required.get(key) or optional.get(key)
        if want is None:
            errors.append(f"{fmt}: unexpected sample {show(key)} = {value!r}")
            continue
        want_family, want_value = want
        if fam != want_family:
            errors.append(f"{fmt}: sample {show(key)} parsed into family {fam!r}, expected {want_family!r}")
        if want_value is CREATED:
            lo, hi = reg.window
            if not (isinstance(value, (int, float)) and lo <= value <= hi):
                errors.append(f"{fmt}: {show(key)} = {value!r} is outside the creation window [{lo}, {hi}]")
        elif not same(want_value, value):
            errors.append(f"{fmt}: {show(key)} = {value!r}, expected {want_value!r}")
    for key in required.keys() - seen:
        errors.append(f"{fmt}: missing sample {show(key)}")
    return errors


def compare_families(reg, fmt, parsed):
    """parsed: [(name, type, help, nsamples)] in the order the parser gave them."""
    errors, seen = [], set()
    for name, typ, help_, nsamples in parsed:
        if name in seen:
            errors.append(f"{fmt}: family {name!r} appears twice")
        seen.add(name)
        fam = reg.families.get(name)
        if fam is None:
            errors.append(f"{fmt}: unexpected family {name!r} ({typ})")
            continue
        if typ != fam["type"]:
            errors.append(f"{fmt}: family {name!r} has type {typ!r}, expected {fam['type']!r}")
        if fam["help"] is not None and help_ != fam["help"]:
            errors.append(f"{fmt}: family {name!r} has help {help_!r}, expected {fam['help']!r}")
        if not fam["series"] and nsamples:
            errors.append(f"{fmt}: family {name!r} has samples but no series")
    # A family that never got a series may be left out entirely.
    for name, fam in reg.families.items():
        if fam["series"] and name not in seen:
            errors.append(f"{fmt}: missing family {name!r}")
    return errors


def check_histogram_structure(fmt, families):
    """Explicit le/cumulative/+Inf==_count checks on what the parser returned."""
    errors = []
    for fam in families:
        if fam.type != "histogram":
            continue
        groups, counts = {}, {}
        for s in fam.samples:
            rest = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            if s.name == fam.name + "_bucket":
                groups.setdefault(rest, []).append((s.labels.get("le"), s.value))
            elif s.name == fam.name + "_count":
                counts[rest] = s.value
        for rest, buckets in groups.items():
            where = f"{fmt}: histogram {fam.name}{dict(rest)}"
            try:
                les = [float(le) for le, _ in buckets]
            except (TypeError, ValueError):
                errors.append(f"{where}: unparseable le in {[le for le, _ in buckets]}")
                continue
            if any(a >= b for a, b in zip(les, les[1:])):
                errors.append(f"{where}: le not strictly increasing: {les}")
            values = [v for _, v in buckets]
            if any(a > b for a, b in zip(values, values[1:])):
                errors.append(f"{where}: buckets not cumulative: {values}")
            if buckets[-1][0] != "+Inf":
                errors.append(f"{where}: last bucket is le={buckets[-1][0]!r}, not \"+Inf\"")
            # A missing _count is compare_samples' business (OpenMetrics may omit it).
            elif rest in counts and counts[rest] != buckets[-1][1]:
                errors.append(f"{where}: le=\"+Inf\" bucket {buckets[-1][1]} != _count {counts.get(rest)}")
    return errors


def check_tokens(fmt, text, families):
    """Shortest round-trip numbers, in sample values and in le labels."""
    errors = []
    for line in text.split("\n"):  # not splitlines(): a label value may hold \r
        if line and not line.startswith("#"):
            problem = token_problem(line.rsplit(" ", 1)[-1])
            if problem:
                errors.append(f"{fmt}: {problem} in line {line!r}")
    for fam in families:
        for s in fam.samples:
            if "le" in s.labels and token_problem(s.labels["le"]):
                errors.append(f"{fmt}: le {token_problem(s.labels['le'])} in {s.name}")
    return errors


def check_parsed_text(reg, fmt, text, parse):
    try:
        families = list(parse(text))
    except Exception as e:  # the parsers raise ValueError and friends
        return [f"{fmt}: parser rejected the text: {type(e).__name__}: {e}"], 0
    actual, errors = [], []
    for fam in families:
        for s in fam.samples:
            try:
                actual.append((fam.name, sample_key(s.name, s.labels), s.value))
            except ValueError as e:
                errors.append(f"{fmt}: {s.name}: {e}")
    errors += compare_families(reg, fmt, [(f.name, f.type, f.documentation, len(f.samples)) for f in families])
    errors += compare_samples(reg, fmt, actual)
    errors += check_histogram_structure(fmt, families)
    errors += check_tokens(fmt, text, families)
    return errors, len(actual)


# ---- OpenMetrics strict grammar (ABNF of the OpenMetrics 1.0 spec) -----------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_ESC = r'(?:[^"\\\n]|\\[\\n"])*'  # escaped-string: no raw " \ or newline
_LABELS = rf'\{{(?:[a-zA-Z_][a-zA-Z0-9_]*="{_ESC}"(?:,[a-zA-Z_][a-zA-Z0-9_]*="{_ESC}")*)?\}}'
_OM_LINE = re.compile(
    rf"# HELP {_NAME} {_ESC}"
    rf"|# TYPE {_NAME} (?:counter|gauge|histogram|gaugehistogram|stateset|info|summary|unknown)"
    rf"|# UNIT {_NAME} [a-zA-Z0-9_:]*"
    rf"|{_NAME}(?:{_LABELS})? [^ ]+(?: [^ ]+)?")


def check_openmetrics_grammar(text):
    lines = text.split("\n")
    errors = []
    if lines[-2:] != ["# EOF", ""]:
        errors.append("openmetrics: the text does not end with exactly one \"# EOF\\n\"")
    for line in lines[:-2]:
        if not _OM_LINE.fullmatch(line):
            errors.append(f"openmetrics: line violates the OpenMetrics grammar: {line!r}")
    return errors


# ---- the four checks ---------------------------------------------------------

def check_promtool(reg, promtool):
    proc = subprocess.run([promtool, "check", "metrics"], input=(reg.path / "metrics.prom").read_bytes(),
                          capture_output=True, timeout=300)
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    if proc.returncode == 0:
        return [], 1
    if proc.returncode != 3:  # 3 is promtool's "lint problems" status
        return [f"promtool: exit {proc.returncode}: {out.strip()}"], 0
    # Lint lines are "<metric> <finding>"; accept only "no help text" where
    # the corpus registered the family without help.
    no_help = {f["name"] for f in reg.expected["families"] if f["help"] == ""}
    findings = [line for line in out.splitlines() if line.strip()]
    errors = [f"promtool lint: {line}" for line in findings
              if line.split(" ", 1)[1:] != ["no help text"] or line.split(" ", 1)[0] not in no_help]
    if not findings:
        errors.append(f"promtool: exit 3 without findings: {out!r}")
    return errors, 1


def check_prometheus(reg):
    return check_parsed_text(reg, "prometheus", reg.text("metrics.prom"), parse_prometheus)


def check_openmetrics(reg):
    text = reg.text("metrics.om")
    errors, n = check_parsed_text(reg, "openmetrics", text, parse_openmetrics)
    return check_openmetrics_grammar(text) + errors, n


def prometheus_quantile(q, buckets):
    """histogram_quantile() as Prometheus computes it; None when empty."""
    total = buckets[-1][1]
    if total == 0:
        return None
    rank = q * total
    b = next((i for i, (_, c) in enumerate(buckets[:-1]) if c >= rank), len(buckets) - 1)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * (rank / count)


def _strict_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def _json_int(token):
    return float(token) if token == "-0" else int(token)  # keep the sign of zero


def json_series_problems(fam, got, want, where, window):
    errors = []
    if set(got) != ({"labels", "created", "value"} if fam["type"] != "histogram" else
                    {"labels", "created", "count", "sum", "buckets", "p50", "p90", "p99"}):
        errors.append(f"{where}: keys {sorted(got)}")
        return errors
    if not (isinstance(got["created"], (int, float)) and window[0] <= got["created"] <= window[1]):
        errors.append(f"{where}: created {got['created']!r} is outside [{window[0]}, {window[1]}]")
    pairs = []
    if fam["type"] != "histogram":
        pairs.append(("value", xfloat(want["value"]), got["value"]))
    else:
        pairs.append(("sum", xfloat(want["sum"]), got["sum"]))
        if got["count"] != want["count"] or isinstance(got["count"], float):
            errors.append(f"{where}: count {got['count']!r}, expected {want['count']}")
        want_buckets = [(xfloat(le), c) for le, c in want["buckets"]]
        got_buckets = got["buckets"]
        if [b.get("count") for b in got_buckets] != [c for _, c in want_buckets]:
            errors.append(f"{where}: bucket counts {[b.get('count') for b in got_buckets]}, "
                          f"expected {[c for _, c in want_buckets]}")
        if len(got_buckets) == len(want_buckets):
            for b, (le, _) in zip(got_buckets, want_buckets):
                pairs.append(("le", le, b.get("le")))
        for q, k in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
            estimate = prometheus_quantile(q, want_buckets)
            if estimate is None:
                if got[k] is not None:
                    errors.append(f"{where}: {k} {got[k]!r}, expected null (no observation)")
            else:
                pairs.append((k, estimate, got[k]))
    for what, expected, value in pairs:
        try:
            ok = same(expected, jnum(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            errors.append(f"{where}: {what} {value!r}, expected {expected!r}")
    return errors


def check_json(reg):
    try:
        doc = json.loads(reg.text("metrics.json"), parse_constant=_strict_constant, parse_int=_json_int)
    except ValueError as e:
        return [f"json: not strict JSON: {e}"], 0
    errors, n, seen = [], 0, set()
    expected = {f["name"]: f for f in reg.expected["families"]}
    for fam in doc.get("families", []):
        name = fam.get("name")
        want = expected.get(name)
        if want is None or name in seen:
            errors.append(f"json: unexpected or repeated family {name!r}")
            continue
        seen.add(name)
        for k in ("type", "help"):
            if want[k] is not None and fam.get(k) != want[k]:
                errors.append(f"json: {name}: {k} {fam.get(k)!r}, expected {want[k]!r}")
        if fam.get("labels") != want["label_names"]:
            errors.append(f"json: {name}: labels {fam.get('labels')!r}, expected {want['label_names']!r}")
        if want["type"] == "histogram" and [float_key(jnum(b)) for b in fam.get("bounds", [])] != \
                [float_key(xfloat(b)) for b in want["bounds"]]:
            errors.append(f"json: {name}: bounds {fam.get('bounds')!r}, expected {want['bounds']!r}")
        wanted = {json.dumps(s["labels"], sort_keys=True): s for s in want["series"]}
        got_keys = set()
        for s in fam.get("series", []):
            key = json.dumps(s.get("labels"), sort_keys=True)
            where = f"json: {name}{key}"
            if key not in wanted or key in got_keys:
                errors.append(f"{where}: unexpected or repeated series")
                continue
            got_keys.add(key)
            n += 1
            errors += json_series_problems(want, s, wanted[key], where, reg.window)
        for key in wanted.keys() - got_keys:
            errors.append(f"json: {name}{key}: missing series")
    for f in reg.expected["families"]:
        if f["series"] and f["name"] not in seen:
            errors.append(f"json: missing family {f['name']!r}")
    return errors, n


def check_registry(path, checks=CHECKS, promtool="promtool"):
    """Runs the checks on one registry directory; returns (errors, counts)."""
    reg = Registry(path)
    errors, counts = check_expected_file(reg.expected), {}
    for check in checks:
        try:
            if check == "promtool":
                e, n = check_promtool(reg, promtool)
            else:
                e, n = {"prometheus": check_prometheus, "openmetrics": check_openmetrics,
                        "json": check_json}[check](reg)
        except (OSError, ValueError, subprocess.SubprocessError) as ex:
            e, n = [f"{check}: {type(ex).__name__}: {ex}"], 0
        errors += e
        counts[check] = n
    return errors, counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--check", action="append", choices=CHECKS, help="default: all")
    ap.add_argument("--promtool", default="promtool")
    args = ap.parse_args(argv)
    names = json.loads((args.corpus / "index.json").read_text("utf-8"))["registries"]
    if not names:
        print("FAIL: the corpus names no registry", file=sys.stderr)
        return 1
    failed = 0
    for name in names:
        errors, counts = check_registry(args.corpus / name, args.check or CHECKS, args.promtool)
        summary = ", ".join(f"{c}: {n}" for c, n in counts.items())
        print(f"{'FAIL' if errors else 'ok'}   {name} ({summary})")
        for e in errors:
            print(f"  {name}: {e}")
        failed += bool(errors)
    print(f"{len(names) - failed} of {len(names)} registries conform")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
