# SPDX-License-Identifier: Apache-2.0
"""The conformance checker must be able to fail.

Each test copies a registry of the real corpus (CM_CONFORMANCE_CORPUS, written
by conformance_corpus), breaks one thing in the copy, and asserts that the
checker reports that very thing. Run by CTest (conformance.checker_selftest):
  CM_CONFORMANCE_CORPUS=<dir> CM_PROMTOOL=<promtool> /usr/bin/python3 -m pytest
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check_exposition as ce  # noqa: E402

PROMTOOL = os.environ.get("CM_PROMTOOL", "promtool")


@pytest.fixture(scope="session")
def corpus():
    path = os.environ.get("CM_CONFORMANCE_CORPUS")
    if not path or not (Path(path) / "index.json").is_file():
        pytest.fail("CM_CONFORMANCE_CORPUS must name a corpus written by conformance_corpus")
    return Path(path)


@pytest.fixture
def copy(corpus, tmp_path):
    """copy(name) -> a private copy of one registry, inside a one-registry corpus."""
    def make(name):
        shutil.copytree(corpus / name, tmp_path / name)
        (tmp_path / "index.json").write_text(json.dumps({"registries": [name]}))
        return tmp_path / name
    return make


def edit(reg, file, pattern, replacement, count=1):
    """Regex-replaces in reg/file; the pattern must match (else the test is void)."""
    path = reg / file
    text = path.read_text("utf-8")
    new, n = re.subn(pattern, replacement, text, count=count)
    assert n == count, f"{pattern!r} not found in {path}"
    path.write_text(new, "utf-8")


def errors(reg, *checks):
    return ce.check_registry(reg, checks or ce.CHECKS, PROMTOOL)[0]


def assert_reported(errs, *fragments):
    text = "\n".join(errs)
    assert errs, "the checker reported nothing"
    for f in fragments:
        assert f in text, f"{f!r} not in:\n{text}"


# ---- positive control: the same copies pass untouched -------------------------

@pytest.mark.parametrize("name", ["values", "escaping", "histograms"])
def test_untouched_copy_passes(copy, name):
    assert errors(copy(name)) == []


# ---- expected values ----------------------------------------------------------

@pytest.mark.parametrize("check", ["prometheus", "openmetrics", "json"])
def test_value_one_ulp_off_is_reported(copy, check):
    reg = copy("values")
    edit(reg, "expected.json", r'("case": "one_tenth"\}, "value": )"0.10000000000000001"',
         r'\g<1>"0.10000000000000002"', count=2)  # the gauge and the counter
    assert_reported(errors(reg, check), "one_tenth", "expected 0.10000000000000002")


def test_sign_of_zero_is_checked(copy):
    reg = copy("values")
    edit(reg, "metrics.prom", r'(values_level\{case="neg_zero"\}) -0\n', r"\1 0\n")
    edit(reg, "metrics.json", r'("case":"neg_zero"\},"created":[^,]+,"value":)-0\}', r"\g<1>0}")
    assert_reported(errors(reg, "prometheus"), "neg_zero", "= 0.0, expected -0.0")
    assert_reported(errors(reg, "json"), "neg_zero", "value 0, expected -0.0")


# ---- sample sets ----------------------------------------------------------------

def test_missing_sample(copy):
    reg = copy("values")
    edit(reg, "metrics.prom", r'values_level\{case="pos_zero"\} 0\n', "")
    assert_reported(errors(reg, "prometheus"), "missing sample values_level{case='pos_zero'}")


def test_extra_sample(copy):
    reg = copy("values")
    edit(reg, "metrics.om", r'(values_level\{case="pos_zero"\} 0\n)', r'\1values_level{case="bogus"} 1\n')
    assert_reported(errors(reg, "openmetrics"), "unexpected sample values_level{case='bogus'}")


def test_duplicate_sample(copy):
    reg = copy("values")
    edit(reg, "metrics.prom", r'(values_level\{case="pos_zero"\} 0\n)', r"\1\1")
    assert_reported(errors(reg, "prometheus"), "values_level{case='pos_zero'} appears twice")


def test_missing_json_series(copy):
    reg = copy("values")
    edit(reg, "metrics.json", r'\{"labels":\{"case":"pos_zero"\},"created":[^,]+,"value":0\},', "")
    assert_reported(errors(reg, "json"), "missing series")


# ---- escaping and the real tools ------------------------------------------------

def test_unescaped_label_value(copy):
    reg = copy("escaping")
    edit(reg, "metrics.prom", r'value="say \\"hi\\""', 'value="say "hi""')
    assert_reported(errors(reg, "promtool"), "promtool: exit 1")
    assert_reported(errors(reg, "prometheus"), "parser rejected the text")


def test_promtool_lint_finding_is_not_ignored(copy):
    reg = copy("values")
    edit(reg, "metrics.prom", "# TYPE values_jobs_total counter", "# TYPE values_jobs_total gauge")
    assert_reported(errors(reg, "promtool"), "promtool lint: values_jobs_total non-counter metrics")
    assert_reported(errors(reg, "prometheus"), "unexpected family 'values_jobs_total' (gauge)")


def test_missing_help_accepted_only_where_registered_without(copy):
    reg = copy("values")
    edit(reg, "metrics.prom", r"# HELP values_level [^\n]*\n", "")
    assert_reported(errors(reg, "promtool"), "promtool lint: values_level no help text")


def test_unescaped_quote_in_openmetrics_help(copy):
    # prometheus_client's OpenMetrics parser accepts this; the grammar check must not.
    reg = copy("escaping")
    edit(reg, "metrics.om", r'Help with \\"quotes\\"', 'Help with "quotes"')
    assert_reported(errors(reg, "openmetrics"), "violates the OpenMetrics grammar", "# HELP escaping_help ")


def test_missing_eof(copy):
    reg = copy("values")
    edit(reg, "metrics.om", r"# EOF\n$", "")
    assert_reported(errors(reg, "openmetrics"), "parser rejected the text", "Missing # EOF")


# ---- number forms ---------------------------------------------------------------

def test_non_shortest_number(copy):
    reg = copy("values")
    edit(reg, "metrics.prom", r'(values_level\{case="one_tenth"\}) 0\.1\n', r"\1 0.10000000000000001\n")
    assert_reported(errors(reg, "prometheus"), "not the shortest round-trip form")


def test_misspelled_infinity(copy):
    reg = copy("values")
    edit(reg, "metrics.om", r'(values_level\{case="pos_inf"\}) \+Inf\n', r"\1 inf\n")
    assert_reported(errors(reg, "openmetrics"), "spelled NaN, +Inf, -Inf")


def test_json_must_be_strict(copy):
    reg = copy("values")
    edit(reg, "metrics.json", r'"value":"NaN"', '"value":NaN')
    assert_reported(errors(reg, "json"), "not strict JSON")


# ---- histograms -----------------------------------------------------------------

def test_non_cumulative_buckets(copy):
    reg = copy("histograms")
    edit(reg, "metrics.prom", r'(hist_single_bound_bucket\{le="0.1"\}) 2\n', r"\1 3\n")
    assert_reported(errors(reg, "prometheus"), "hist_single_bound", "buckets not cumulative")


def test_inf_bucket_differs_from_count(copy):
    reg = copy("histograms")
    edit(reg, "metrics.prom", r"hist_single_bound_count 2\n", "hist_single_bound_count 3\n")
    assert_reported(errors(reg, "prometheus"), 'le="+Inf" bucket 2.0 != _count 3.0')


def drop_count_sum(reg, family):
    """Removes family's _count and _sum lines from metrics.om."""
    path = reg / "metrics.om"
    text = path.read_text("utf-8")
    new = re.sub(rf"(?m)^{family}_(count|sum)(\{{[^\n]*\}})? [^\n]*\n", "", text)
    assert new != text, f"no _count/_sum of {family} in {path}"
    path.write_text(new, "utf-8")


def add_count_sum(reg, family, total, count):
    """Puts back the _count and _sum lines the renderer leaves out."""
    path = reg / "metrics.om"
    text = path.read_text("utf-8")
    new = re.sub(rf"(?m)^({family}_created(\{{[^\n]*\}})? [^\n]*\n)",
                 rf"{family}_count\2 {count}\n{family}_sum\2 {total}\n\1", text, count=1)
    assert new != text, f"no _created of {family} in {path}"
    path.write_text(new, "utf-8")


@pytest.mark.parametrize("name", ["negative_sum", "negative_bounds"])
def test_openmetrics_forbidden_count_sum_is_reported(copy, name):
    # OpenMetrics 1.0: no _sum with negative bounds, a _sum is never negative,
    # _count only with _sum. The renderer drops both; output that has them fails.
    reg = copy(name)
    assert errors(reg, "openmetrics") == []
    add_count_sum(reg, "hist_" + name, -9, 2)
    assert errors(reg, "openmetrics") != []


def test_openmetrics_count_sum_optional_only_after_negative_observations(copy):
    reg = copy("histograms")
    drop_count_sum(reg, "hist_negative_observations")
    assert errors(reg, "openmetrics") == []
    drop_count_sum(reg, "hist_single_bound")
    assert_reported(errors(reg, "openmetrics"), "missing sample hist_single_bound_sum{}",
                    "missing sample hist_single_bound_count{}")


def test_wrong_percentile(copy):
    reg = copy("histograms")
    edit(reg, "metrics.json", r'("p50":)([0-9.e+-]+)', r"\g<1>12345")
    assert_reported(errors(reg, "json"), "p50 12345")


def test_created_outside_window(copy):
    reg = copy("values")
    edit(reg, "metrics.om", r'(values_jobs_created) [0-9.e+]+\n', r"\1 1.5\n")
    assert_reported(errors(reg, "openmetrics"), "values_jobs_created{} = 1.5 is outside the creation window")


# ---- the command line -----------------------------------------------------------

def run_checker(corpus_dir):
    return subprocess.run([sys.executable, str(HERE / "check_exposition.py"), "--promtool", PROMTOOL,
                           str(corpus_dir)], capture_output=True, text=True, timeout=600)


def test_exit_status(copy):
    reg = copy("values")
    ok = run_checker(reg.parent)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    edit(reg, "metrics.prom", r'values_level\{case="pos_zero"\} 0\n', "")
    bad = run_checker(reg.parent)
    assert bad.returncode == 1
    assert "FAIL   values" in bad.stdout and "missing sample" in bad.stdout


def test_empty_corpus_fails(tmp_path):
    (tmp_path / "index.json").write_text('{"registries": []}')
    assert run_checker(tmp_path).returncode == 1
