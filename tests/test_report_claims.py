# ruff: noqa: RUF001  (stated values are quoted as the lecture writes them, multiplication signs too)
"""The claims ledger: reading stated values, the verdict rules, and claims that hold or do not."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest
from tinycnn.reports import claims
from tinycnn.reports.claims import CLAIMS, COLUMNS, Claim, Measurement, claims_ledger, judge
from tinycnn.reports.pipeline import ReportData, ReportSettings

from tinycnn import reports


def report_with(**tables: pd.DataFrame) -> ReportData:
    return ReportData(ReportSettings(n_seeds=1, epochs=3), tables=dict(tables))


def cnn_vs_mlp(mlp_parameters: int) -> pd.DataFrame:
    """A CNN-vs-MLP table as section 8 computes it, with the given MLP count."""
    rows = []
    for model, n in (("TinyCNN", 114), ("MLP (18 hidden)", mlp_parameters)):
        rows.append(
            {
                "model": model,
                "n_seeds": 2,
                "mean": 0.995,
                "min": 0.99,
                "max": 1.0,
                "train_mean": 1.0,
                "n_parameters": n,
                "parameter_ratio": n / 114,
            }
        )
    return pd.DataFrame(rows)


def claim(claim_id: str) -> Claim:
    return next(c for c in CLAIMS if c.claim_id == claim_id)


# -- reading stated values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,242", 1242),
        ("> 99%", 0.99),
        ("~92%", 0.92),
        ("60 K", 60_000),
        ("138 M", 138e6),
        ("150 million", 150e6),
        ("10.9×", 10.9),
        ("< 1e-5", 1e-5),
        ("~40", 40),
        ("0.94", 0.94),
    ],
)
def test_parse_number(text, value):
    assert claims.parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["6 × 6", "fails", ""])
def test_parse_number_refuses_non_numbers(text):
    with pytest.raises(ValueError, match="cannot read a number"):
        claims.parse_number(text)


def test_stated_decimals():
    assert claims.stated_decimals("10.9×") == 1
    assert claims.stated_decimals("73%") == 0


# -- rules -------------------------------------------------------------------------------------


def verdict(rule, stated: str, value) -> bool:
    return rule(stated, Measurement(value, str(value)))[0]


def test_exact_rule_for_numbers_shapes_and_matrices():
    assert verdict(claims.exact(), "1,242", 1242)
    assert not verdict(claims.exact(), "1,242", 1227)
    assert verdict(claims.exact(), "6 × 6", "6 x 6")
    assert verdict(claims.exact(), "5 2 / 4 2", "5 2 / 4 2")
    assert not verdict(claims.exact(), "5 2 / 4 2", "5 2 / 4 6")


def test_rounded_rule_uses_the_stated_precision():
    assert not verdict(claims.rounded(), "73%", 84 / 114)  # 73.7% rounds to 74%
    assert verdict(claims.rounded(), "74%", 84 / 114)
    assert not verdict(claims.rounded(), "10.9×", 1227 / 114)  # 10.76
    assert verdict(claims.rounded(), "10.9×", 1242 / 114)  # 10.89


def test_tolerance_rules():
    assert verdict(claims.within(0.05), "25 M", 25_557_032)
    assert not verdict(claims.within(0.05), "20 M", 25_557_032)
    assert verdict(claims.near(0.02), "~92%", 0.93)
    assert not verdict(claims.near(0.02), "~92%", 0.975)
    assert verdict(claims.above(), "> 99%", 0.995) and not verdict(claims.above(), "> 99%", 0.99)
    assert verdict(claims.below(), "< 1e-5", 3e-10) and not verdict(claims.below(), "< 1e-5", 1)
    assert verdict(claims.at_most(), "~40", 3) and not verdict(claims.at_most(), "~40", 41)
    assert verdict(claims.holds(), "fails", True) and not verdict(claims.holds(), "fails", False)


# -- the ledger on claims that hold and claims that do not -------------------------------------


def test_a_claim_that_holds_is_reproduced():
    row = judge(claim("C8.1"), report_with(**{"08_cnn_vs_mlp": cnn_vs_mlp(65 * 18 + 19 * 3)}))
    assert (row["stated"], row["computed"], row["verdict"]) == ("114", "114", "reproduced")


def test_the_lectures_mlp_count_differs_and_the_note_says_why():
    row = judge(claim("C8.2"), report_with(**{"08_cnn_vs_mlp": cnn_vs_mlp(65 * 18 + 19 * 3)}))
    assert row["stated"] == "1,242" and row["computed"] == "1,227"
    assert row["verdict"] == "differs"
    assert "(64+1)·18 + (18+1)·3 = 1,227" in row["note"]
    assert "no hidden width gives 1,242" in row["note"]


def test_the_verdict_follows_the_computation_not_the_lecture():
    corrected = dataclasses.replace(claim("C8.2"), stated="1,227")
    row = judge(corrected, report_with(**{"08_cnn_vs_mlp": cnn_vs_mlp(1227)}))
    assert row["verdict"] == "reproduced" and "hidden width 18 gives 1,227" in row["note"]
    # ... and the ratio claim built on the wrong count differs too.
    ratio = judge(claim("C8.5"), report_with(**{"08_cnn_vs_mlp": cnn_vs_mlp(1227)}))
    assert ratio["verdict"] == "differs" and ratio["computed"] == "10.76×"


def test_not_testable_claims_say_why():
    row = judge(claim("C12.17"), report_with())
    assert (
        row["verdict"] == "not testable" and row["computed"] == "" and "historical" in row["note"]
    )


def test_ledger_columns_are_exactly_the_issue_s():
    ledger = claims_ledger(report_with(), claims=[claim("C12.12"), claim("C12.13")])
    assert (
        tuple(ledger.columns)
        == COLUMNS
        == ("claim_id", "section", "claim", "stated", "computed", "verdict", "note")
    )


def test_every_claim_is_well_formed():
    ids = [c.claim_id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    sections = [c.section for c in CLAIMS]
    assert sections == sorted(sections) and set(sections) <= set(range(1, 14))
    for c in CLAIMS:
        assert c.claim_id.startswith(f"C{c.section}.")
        assert c.stated and c.claim
        assert (c.measure is None) == (c.rule is None) == bool(c.reason)


def test_stated_values_are_typed_only_in_the_ledger():
    """Distinctive numbers of the lecture appear in no other report module."""
    distinctive = ["1,242", "1242", "150,528,100", "150528100", "1,221", "1221", "10.9", "0.94"]
    package = Path(reports.__file__).parent
    for path in package.glob("*.py"):
        if path.name == "claims.py":
            continue
        text = path.read_text(encoding="utf-8")
        found = [
            value
            for value in distinctive
            if re.search(
                rf"(?<![\d.,]){re.escape(value)}"
                rf"(?![\d,])",
                text,
            )
        ]
        assert not found, f"{path.name} contains the lecture's value(s) {found}"
