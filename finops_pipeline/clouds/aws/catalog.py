"""What the AWS source knows about AWS, as data: CloudWatch metrics per resource type, the
inventory calls, prices, Cost Explorer's dimensions and record types, and the IAM action
each call needs (named in AccessDenied errors and listed in docs/operations.md)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from finops_pipeline.clouds.base import MetricSpec

# Price list (us-east-1): GetMetricData $0.01 per 1,000 metrics requested; other
# CloudWatch API requests $0.01 per 1,000; Cost Explorer $0.01 per request (page).
GET_METRIC_DATA_PER_METRIC = Decimal("0.00001")
CLOUDWATCH_PER_REQUEST = Decimal("0.00001")
COST_EXPLORER_PER_REQUEST = Decimal("0.01")
# Amazon S3 pricing, S3 Standard requests: GET and all other requests $0.0004 per 1,000.
S3_GET_PER_REQUEST = Decimal("0.0000004")

MAX_QUERIES_PER_CALL = 500  # GetMetricData limit
RESOURCE_DATA_DAYS = 14  # GetCostAndUsageWithResources only serves the last 14 days
# Cost Explorer serves "the current month and up to the previous 13 months at daily and monthly
# granularity" (Cost Management user guide, ce-advanced-cost-analysis); multi-year data, when
# enabled, is monthly only, so it does not reach further for daily cost.
COST_HISTORY_MONTHS = 13
# The one service GetCostAndUsageWithResources serves; its Filter must include this SERVICE.
EC2_COMPUTE = "Amazon Elastic Compute Cloud - Compute"


@dataclass(frozen=True)
class Namespace:
    """Where a resource type's metrics live and which dimensions identify one resource."""

    namespace: str
    dimensions: tuple[str, ...]  # identity dimension first
    period: int = 3600


NAMESPACES: dict[str, Namespace] = {
    "ec2": Namespace("AWS/EC2", ("InstanceId",)),
    "rds": Namespace("AWS/RDS", ("DBInstanceIdentifier",)),
    "lambda": Namespace("AWS/Lambda", ("FunctionName",)),
    "dynamodb": Namespace("AWS/DynamoDB", ("TableName",)),
    "s3": Namespace("AWS/S3", ("BucketName", "StorageType"), period=86400),  # daily storage metrics
    "elb": Namespace("AWS/ELB", ("LoadBalancerName",)),
    "alb": Namespace("AWS/ApplicationELB", ("LoadBalancer",)),
}

# S3 publishes BucketSizeBytes once per storage class (StorageType StandardStorage,
# StandardIAStorage, GlacierStorage, ...): a bucket's storage_bytes is the sum over the classes
# ListMetrics shows for it. NumberOfObjects is published for AllStorageTypes only.
S3_ALL_STORAGE_TYPES = "AllStorageTypes"

# Types whose metrics CloudWatch publishes only on activity (classic ELB: "only when requests
# are flowing"; Lambda and DynamoDB: "only ... a nonzero value"): an idle one has no datapoints
# and drops out of ListMetrics after two weeks, so the inventory lists them.
# type -> (service, operation, list key, name key, request token, response token)
INVENTORY = {
    "elb": ("elb", "DescribeLoadBalancers", "LoadBalancerDescriptions", "LoadBalancerName", "Marker", "NextMarker"),
    "lambda": ("lambda", "ListFunctions", "Functions", "FunctionName", "Marker", "NextMarker"),
    "dynamodb": ("dynamodb", "ListTables", "TableNames", None, "ExclusiveStartTableName", "LastEvaluatedTableName"),
}

METRICS: dict[str, list[MetricSpec]] = {
    "ec2": [
        MetricSpec("CPUUtilization", "cpu_utilization_pct", "gauge", "Percent"),
        MetricSpec("NetworkIn", "network_in_bytes", "counter", "Bytes"),
        MetricSpec("NetworkOut", "network_out_bytes", "counter", "Bytes"),
        MetricSpec("EBSReadBytes", "disk_read_bytes", "counter", "Bytes"),
        MetricSpec("EBSWriteBytes", "disk_write_bytes", "counter", "Bytes"),
    ],
    "rds": [
        MetricSpec("CPUUtilization", "cpu_utilization_pct", "gauge", "Percent"),
        MetricSpec("DatabaseConnections", "connections", "gauge", "Count"),
        MetricSpec("ReadIOPS", "read_iops", "gauge", "Count/Second"),
        MetricSpec("FreeableMemory", "memory_available_bytes", "gauge", "Bytes"),
    ],
    "lambda": [
        MetricSpec("Invocations", "invocations", "counter", "Count"),
        MetricSpec("Duration", "duration_ms", "gauge", "Milliseconds"),
        MetricSpec("Errors", "errors", "counter", "Count"),
    ],
    "dynamodb": [
        MetricSpec("ConsumedReadCapacityUnits", "read_capacity_units", "counter", "Count"),
        MetricSpec("ConsumedWriteCapacityUnits", "write_capacity_units", "counter", "Count"),
    ],
    "s3": [
        MetricSpec("BucketSizeBytes", "storage_bytes", "gauge", "Bytes"),
        MetricSpec("NumberOfObjects", "object_count", "gauge", "Count"),
    ],
    "elb": [
        MetricSpec("RequestCount", "requests", "counter", "Count"),
        MetricSpec("HealthyHostCount", "healthy_hosts", "gauge", "Count"),
    ],
    "alb": [
        MetricSpec("RequestCount", "requests", "counter", "Count"),
        MetricSpec("ActiveConnectionCount", "connections", "counter", "Count"),
        # "Reporting criteria: Always reported": lists every ALB, idle ones included.
        MetricSpec("ConsumedLCUs", "consumed_lcus", "gauge", "Count"),
    ],
}

# IAM action each call needs, for AccessDenied messages.
IAM_ACTIONS = {
    "ListMetrics": "cloudwatch:ListMetrics",
    "GetMetricData": "cloudwatch:GetMetricData",
    "GetCostAndUsage": "ce:GetCostAndUsage",
    "GetCostAndUsageWithResources": "ce:GetCostAndUsageWithResources",
    "GetCostForecast": "ce:GetCostForecast",
    "GetCallerIdentity": "sts:GetCallerIdentity",
    "AssumeRole": "sts:AssumeRole (and a trust policy on the role that names the pipeline's principal)",
    "ListAccounts": "organizations:ListAccounts (call it from the management or a delegated administrator account)",
    "DescribeLoadBalancers": "elasticloadbalancing:DescribeLoadBalancers",
    "ListFunctions": "lambda:ListFunctions",
    "ListTables": "dynamodb:ListTables",
    # The Data Exports reader (AWS_COST_SOURCE=export): the export's bucket and prefix.
    "GetObject": "s3:GetObject on arn:aws:s3:::<bucket>/<prefix>/*",
    "HeadObject": "s3:GetObject on arn:aws:s3:::<bucket>/<prefix>/*",
    "ListObjectsV2": "s3:ListBucket on arn:aws:s3:::<bucket>",
}

# Canonical cost dimensions -> Cost Explorer GroupBy keys.
CE_DIMENSIONS = {
    "service": "SERVICE",
    "region": "REGION",
    "account": "LINKED_ACCOUNT",
    "project": "LINKED_ACCOUNT",
    "subscription": "LINKED_ACCOUNT",
    "resource": "RESOURCE_ID",
}
CE_COLUMNS = {
    "SERVICE": "service_name",
    "LINKED_ACCOUNT": "sub_account_id",
    "REGION": "region",
    "RESOURCE_ID": "resource_id",
    "USAGE_TYPE": "sku",
    "INSTANCE_TYPE": "sku",
    "RECORD_TYPE": "charge_category",
}
RECORD_TYPES = {
    "Usage": "Usage",
    "Tax": "Tax",
    "Credit": "Credit",
    "Refund": "Credit",
    "DiscountedUsage": "Usage",
    "SavingsPlanCoveredUsage": "Usage",
    "SavingsPlanRecurringFee": "Purchase",
    "SavingsPlanUpfrontFee": "Purchase",
    "RIFee": "Purchase",
    "Fee": "Purchase",
    "Support": "Usage",
    "SavingsPlanNegation": "Adjustment",
    "BundledDiscount": "Credit",
    "Distributor Discount": "Credit",
    "EdpDiscount": "Credit",
}
