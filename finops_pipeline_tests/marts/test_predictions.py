"""Predictions: Infracost JSON (subresources, null costs), the CSV, malformed files, the asset."""

import json
from datetime import date
from decimal import Decimal

import pytest

from finops_pipeline.defs.marts import cost_predictions
from finops_pipeline.predictions import PredictionFileError, read_predictions
from finops_pipeline.simulator.predictions import write_predictions
from finops_pipeline.warehouse.catalog import connect_lake
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline_tests.runs import materialize

INFRACOST = {
    "version": "0.2",
    "currency": "USD",
    "timeGenerated": "2026-05-20T10:00:00Z",
    "projects": [
        {
            "name": "infra",
            "breakdown": {
                "resources": [
                    {
                        "name": "aws_instance.web",
                        "resourceType": "aws_instance",
                        "tags": {"finops_id": "web-1"},
                        "hourlyCost": "0.1052",
                        "monthlyCost": "76.796",  # already includes its root volume below
                        "subresources": [{"name": "root_block_device", "monthlyCost": "0.8", "hourlyCost": "0.0011"}],
                    },
                    {
                        "name": "aws_db_instance.db",
                        "resourceType": "aws_db_instance",
                        "tags": {},
                        "hourlyCost": "0.171",
                        "monthlyCost": None,
                    },
                    {
                        "name": "aws_lb.front",
                        "resourceType": "aws_lb",
                        "monthlyCost": None,
                        "hourlyCost": None,
                        "subresources": [
                            {"name": "lcu", "monthlyCost": "5.5"},
                            {"name": "data", "monthlyCost": None, "hourlyCost": None},
                        ],
                    },
                    {
                        "name": "aws_lambda_function.fn",
                        "resourceType": "aws_lambda_function",
                        "monthlyCost": None,
                        "hourlyCost": None,
                        "subresources": [],
                    },
                    {
                        "name": "google_compute_instance.vm",
                        "resourceType": "google_compute_instance",
                        "monthlyCost": "12.00",
                    },
                ]
            },
        }
    ],
}


def test_infracost_resources_subresources_and_null_costs(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps(INFRACOST))
    rows = read_predictions(tmp_path, "finops_id").set_index("resource_name")
    assert list(rows.index) == ["aws_instance.web", "aws_db_instance.db", "aws_lb.front", "google_compute_instance.vm"]
    assert rows.loc["aws_instance.web", "predicted_monthly_cost"] == Decimal("76.796")  # not + 0.8 again
    assert rows.loc["aws_db_instance.db", "predicted_monthly_cost"] == Decimal("124.830")  # 0.171 x 730
    assert rows.loc["aws_lb.front", "predicted_monthly_cost"] == Decimal("5.5")  # the priced subresource
    assert rows.loc["aws_instance.web", "match_value"] == "web-1"
    assert rows.loc["aws_instance.web", "service_name"] == "Amazon Elastic Compute Cloud - Compute"
    assert rows.loc["google_compute_instance.vm", "provider"] == "gcp"
    assert set(rows["month"]) == {date(2026, 5, 1)}  # month of timeGenerated
    assert rows.loc["aws_lb.front", "source_line"] == "projects[0].breakdown.resources[2]"


def test_month_in_the_file_name_wins(tmp_path):
    (tmp_path / "infracost-2026-03.json").write_text(json.dumps(INFRACOST))
    assert set(read_predictions(tmp_path, "finops_id")["month"]) == {date(2026, 3, 1)}


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "provider,service,month,predicted_monthly_cost,currency\naws,EC2,2026-04,10,USD\naws,EC2,2026-04,1O.5,USD\n",
            r"bad\.csv: line 3, field 'predicted_monthly_cost': '1O\.5' is not a decimal number",
        ),
        (
            "provider,service,month,predicted_monthly_cost,currency\naws,EC2,2026-13,10,USD\n",
            r"bad\.csv: line 2, field 'month': '2026-13' is not a month",
        ),
        (
            "provider,service,month,currency\naws,EC2,2026-04,USD\n",
            r"bad\.csv: line 1: missing column\(s\) \['predicted_monthly_cost'\]",
        ),
        (
            "provider,service,month,predicted_monthly_cost,currency\noracle,DB,2026-04,10,USD\n",
            r"bad\.csv: line 2, field 'provider'",
        ),
        (
            "provider,service,month,predicted_monthly_cost,currency\naws,EC2,2026-04,1,200,USD\n",
            r"bad\.csv: line 2: more fields than the header has$",
        ),
        (
            "provider,service,month,predicted_monthly_cost,currency\naws, ,2026-04,10,USD\n",
            r"bad\.csv: line 2, field 'service': empty; use the billing service name$",
        ),
        (
            "provider,service,month,predicted_monthly_cost,currency\naws,EC2,2026-04,NaN,USD\n",
            r"bad\.csv: line 2, field 'predicted_monthly_cost': 'NaN' is not a finite number$",
        ),
    ],
)
def test_malformed_csv_names_the_file_line_and_field(tmp_path, content, message):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(PredictionFileError, match=message):
        read_predictions(tmp_path, "finops_id")


def test_malformed_infracost_names_the_json_path(tmp_path):
    broken = json.loads(json.dumps(INFRACOST))
    broken["projects"][0]["breakdown"]["resources"][2]["subresources"][0]["monthlyCost"] = "five"
    (tmp_path / "plan.json").write_text(json.dumps(broken))
    with pytest.raises(
        PredictionFileError,
        match=r"plan\.json: projects\[0\]\.breakdown\.resources\[2\]"
        r"\.subresources\[0\]\.monthlyCost: 'five'",
    ):
        read_predictions(tmp_path, "finops_id")
    (tmp_path / "plan.json").write_text('{"projects": [')
    with pytest.raises(PredictionFileError, match=r"plan\.json: not valid JSON at line 1"):
        read_predictions(tmp_path, "finops_id")


def test_simulated_predictions_miss_on_purpose(fleet, tmp_path):
    write_predictions(fleet, tmp_path, date(2026, 3, 1))
    rows = read_predictions(tmp_path, "finops_id")
    assert "AWS Lambda" not in set(rows.service_name)
    rds = fleet.of("aws", "rds")[0]
    predicted = rows[rows.match_value == rds.tags["finops_id"]].predicted_monthly_cost.iloc[0]
    assert rds.hourly_cost == Decimal("0.171")  # db.t3.small-like list price of the fleet
    assert predicted == Decimal("74.898")  # 0.171 x 730 hours x 0.6: under-predicted on purpose
    assert set(rows[rows.billing_currency == "EUR"].source_format) == {"csv"}


def test_asset_keeps_previous_predictions_when_a_file_is_malformed(fleet, tmp_path, monkeypatch, data_dir):
    predictions = tmp_path / "predictions"
    write_predictions(fleet, predictions, date(2026, 3, 1))
    monkeypatch.setenv("FINOPS_PREDICTIONS_DIR", str(predictions))
    assert materialize([cost_predictions]).success
    con = connect_lake(Lake(data_dir / "lake"))
    before = con.execute("SELECT count(*), sum(predicted_monthly_cost) FROM cost_predictions").fetchone()
    # 36 resources less 2 Lambda functions (unpredicted): 29 USD resources in the Infracost JSON
    # and the EUR subscription's 5 resources as its 4 services in the CSV.
    assert before[0] == 29 + 4
    (predictions / "zz-broken.csv").write_text(
        "provider,service,month,predicted_monthly_cost,currency\naws,EC2,2026-03,-4,USD\n"
    )
    result = materialize([cost_predictions], raise_on_error=False)
    assert not result.success
    failure = " ".join(e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure)
    assert "zz-broken.csv: line 2, field 'predicted_monthly_cost'" in failure
    con = connect_lake(Lake(data_dir / "lake"))
    assert con.execute("SELECT count(*), sum(predicted_monthly_cost) FROM cost_predictions").fetchone() == before


def test_infracost_currency_is_validated_and_upper_cased_like_the_csv(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps({**INFRACOST, "currency": "eur"}))
    assert set(read_predictions(tmp_path, "finops_id")["billing_currency"]) == {"EUR"}
    (tmp_path / "plan.json").write_text(json.dumps({**INFRACOST, "currency": "euro"}))
    with pytest.raises(PredictionFileError, match=r"plan\.json: field 'currency': 'euro' is not an ISO 4217 code"):
        read_predictions(tmp_path, "finops_id")


def test_the_same_month_and_key_in_two_files_names_both_files(tmp_path):
    row = "provider,service,month,predicted_monthly_cost,currency\naws,Amazon DynamoDB,2026-04,10,USD\n"
    (tmp_path / "team-a.csv").write_text(row)
    (tmp_path / "team-b.csv").write_text(row.replace(",10,", ",12,"))
    with pytest.raises(PredictionFileError) as info:
        read_predictions(tmp_path, "finops_id")
    assert str(info.value) == (
        f"{tmp_path / 'team-b.csv'}: line 2 predicts aws Amazon DynamoDB for 2026-04, as {tmp_path / 'team-a.csv'}: "
        "line 2 already does; keep each month and service (or resource) in one file"
    )
    (tmp_path / "team-b.csv").unlink()
    (tmp_path / "infracost-2026-05.json").write_text(json.dumps(INFRACOST))
    (tmp_path / "infracost-2026-05-rerun.json").write_text(json.dumps(INFRACOST))
    with pytest.raises(
        PredictionFileError,
        match=r"infracost-2026-05\.json: projects\[0\]\.breakdown\.resources\[0\] "
        r"predicts aws Amazon Elastic Compute Cloud - Compute aws_instance\.web "
        r"for 2026-05, as .*infracost-2026-05-rerun\.json: projects\[0\]",
    ):
        read_predictions(tmp_path, "finops_id")


def _resources(resources: list) -> dict:
    """INFRACOST with one project holding ``resources``."""
    return {**INFRACOST, "projects": [{"name": "x", "breakdown": {"resources": resources}}]}


@pytest.mark.parametrize(
    "generated, month",
    [
        ("2026-05-31T23:30:00-02:00", date(2026, 6, 1)),  # 01:30 UTC on June 1st
        ("2026-05-31T23:30:00", date(2026, 5, 1)),  # no offset: taken as UTC
    ],
)
def test_the_month_of_time_generated_is_the_utc_month(tmp_path, generated, month):
    (tmp_path / "plan.json").write_text(json.dumps({**INFRACOST, "timeGenerated": generated}))
    assert set(read_predictions(tmp_path, "finops_id")["month"]) == {month}


@pytest.mark.parametrize(
    "document, message",
    [
        ({**INFRACOST, "projects": ["infra"]}, r"plan\.json: projects\[0\]: expected an object"),
        (
            {**INFRACOST, "projects": [{"name": "x", "breakdown": ["r"]}]},
            r"plan\.json: projects\[0\]\.breakdown: expected an object",
        ),
        (
            {
                **INFRACOST,
                "projects": [
                    {
                        "name": "x",
                        "breakdown": {
                            "resources": [{"name": "a", "resourceType": "aws_instance", "monthlyCost": "1e40"}]
                        },
                    }
                ],
            },
            r"plan\.json: projects\[0\]\.breakdown\.resources\[0\]\.monthlyCost: '1e40' is out of range",
        ),
        (
            {
                **INFRACOST,
                "projects": [
                    {
                        "name": "x",
                        "breakdown": {
                            "resources": [{"name": "a", "resourceType": "aws_instance", "hourlyCost": "9e25"}]
                        },
                    }
                ],
            },
            r"plan\.json: projects\[0\]\.breakdown\.resources\[0\]\.hourlyCost: '9e25' is out of range",
        ),
        ([1, 2], r"plan\.json: field 'projects' is missing"),
        (
            {**INFRACOST, "projects": [{"name": "x", "breakdown": {"totalMonthlyCost": "0"}}]},
            r"plan\.json: projects\[0\]\.breakdown\.resources: missing or not a list$",
        ),
        (
            _resources(["aws_instance.web"]),
            r"plan\.json: projects\[0\]\.breakdown\.resources\[0\]: expected an object, got str$",
        ),
        (
            _resources([{"name": "aws_lb.front", "resourceType": "aws_lb", "subresources": {"lcu": "5.5"}}]),
            r"plan\.json: projects\[0\]\.breakdown\.resources\[0\]\.subresources: expected a list$",
        ),
        (
            _resources([{"name": "aws_instance.web", "monthlyCost": "1"}]),
            r"plan\.json: projects\[0\]\.breakdown\.resources\[0\]\.resourceType: missing$",
        ),
        (
            _resources([{"name": "a", "resourceType": "aws_instance", "monthlyCost": "1", "tags": ["team=a"]}]),
            r"plan\.json: projects\[0\]\.breakdown\.resources\[0\]\.tags: expected an object of key: value$",
        ),
        (
            _resources([{"name": "a", "resourceType": "oci_core_instance", "monthlyCost": "1"}]),
            r"plan\.json: projects\[0\]\.breakdown\.resources\[0\]\.resourceType: 'oci_core_instance' "
            r"is not an AWS, Google or Azure type$",
        ),
        (
            {**INFRACOST, "timeGenerated": "last Tuesday"},
            r"plan\.json: timeGenerated 'last Tuesday' is not an ISO timestamp$",
        ),
        (
            {k: v for k, v in INFRACOST.items() if k != "timeGenerated"},
            r"plan\.json: no month to apply the estimate to; put YYYY-MM in the file name "
            r"\(e\.g\. infracost-2026-03\.json\) or keep Infracost's timeGenerated field$",
        ),
    ],
)
def test_malformed_infracost_shapes_and_out_of_range_numbers_name_the_file(tmp_path, document, message):
    (tmp_path / "plan.json").write_text(json.dumps(document))
    with pytest.raises(PredictionFileError, match=message):
        read_predictions(tmp_path, "finops_id")


def test_an_empty_predictions_directory_is_treated_like_a_missing_one(fleet, tmp_path, monkeypatch, data_dir):
    predictions = tmp_path / "predictions"
    write_predictions(fleet, predictions, date(2026, 3, 1))
    monkeypatch.setenv("FINOPS_PREDICTIONS_DIR", str(predictions))
    assert materialize([cost_predictions]).success
    before = connect_lake(Lake(data_dir / "lake")).execute("SELECT count(*) FROM cost_predictions").fetchone()[0]
    for path in predictions.iterdir():
        path.unlink()
    result = materialize([cost_predictions])
    assert result.success
    [materialization] = result.asset_materializations_for_node("cost_predictions")
    assert materialization.metadata["status"].value == "skipped"
    assert "no prediction files" in materialization.metadata["skipped_reason"].value
    assert (
        connect_lake(Lake(data_dir / "lake")).execute("SELECT count(*) FROM cost_predictions").fetchone()[0]
        == before
        == 33
    )
    predictions.rmdir()
    [missing] = materialize([cost_predictions]).asset_materializations_for_node("cost_predictions")
    assert missing.metadata["skipped_reason"].value == (
        f"{predictions} has no prediction files (*.json, *.csv); set FINOPS_PREDICTIONS_DIR or add files. "
        "The predictions already landed are kept"
    )
    assert connect_lake(Lake(data_dir / "lake")).execute("SELECT count(*) FROM cost_predictions").fetchone()[0] == 33
