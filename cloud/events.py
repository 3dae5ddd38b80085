"""AWS's own event shapes, built in one place so the local runtime and tests speak exactly what AWS sends.

- EventBridge event: ``version, id, detail-type, source, account, time, region, resources, detail``.
- S3 notification record (``Records[]``) with a URL-encoded key, as S3 encodes it.
- Lambda destination record, as EventBridge delivers it (source ``lambda``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

ACCOUNT = "000000000000"  # the embedded mode's account id; AWS fills in the real one
REGION = "us-east-1"

SUCCESS = "Lambda Function Invocation Result - Success"
FAILURE = "Lambda Function Invocation Result - Failure"


def iso(ts: datetime | None = None) -> str:
    """EventBridge's time format: UTC, second precision, ``Z``."""
    ts = ts or datetime.now(UTC)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def eventbridge_event(source: str, detail_type: str, detail: Mapping[str, Any], *,
                      resources: list[str] | None = None, event_id: str | None = None,
                      time: str | None = None, account: str = ACCOUNT, region: str = REGION) -> dict:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": time or iso(),
        "region": region,
        "resources": list(resources or []),
        "detail": dict(detail),
    }


def event_from_entry(entry: Mapping[str, Any], **kw: Any) -> dict:
    """A PutEvents request entry (``Source, DetailType, Detail`` as a JSON string) as the event it becomes."""
    detail = entry.get("Detail", "{}")
    detail = json.loads(detail) if isinstance(detail, str) else dict(detail)
    return eventbridge_event(entry["Source"], entry["DetailType"], detail,
                             resources=entry.get("Resources"), **kw)


def entry(source: str, detail_type: str, detail: Mapping[str, Any], *, bus_name: str | None = None) -> dict:
    """A PutEvents request entry: the one shape every bus accepts."""
    e = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail, default=str)}
    if bus_name:
        e["EventBusName"] = bus_name
    return e


def s3_record(bucket: str, key: str, *, size: int, etag: str, sequencer: str,
              event_name: str = "ObjectCreated:Put", time: datetime | None = None,
              region: str = REGION) -> dict:
    """S3's notification record; ``time`` (``eventTime``): when the object was written, default now."""
    when = (time or datetime.now(UTC)).astimezone(UTC)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:CORB-LOCAL"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                             "x-amz-id-2": uuid.uuid4().hex},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "corb-local",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "CORB"},
                       "arn": f"arn:aws:s3:::{bucket}"},
            # S3 URL-encodes keys in notifications (spaces become '+'); consumers must unquote_plus.
            "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": sequencer},
        },
    }


def s3_event(*records: dict) -> dict:
    return {"Records": list(records)}


def function_arn(function: str, *, account: str = ACCOUNT, region: str = REGION) -> str:
    """The embedded mode names each function as a Lambda would be named (dots become dashes)."""
    return f"arn:aws:lambda:{region}:{account}:function:corb-{function.replace('.', '-')}:$LATEST"


def destination_record(*, function: str, request_id: str, request_payload: Any, response_payload: Any,
                       success: bool, attempts: int, function_error: str | None = None,
                       timestamp: str | None = None) -> dict:
    """The ``detail`` of a Lambda destination event (onSuccess / onFailure)."""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if not success:
        response_context["functionError"] = function_error or "Unhandled"
    return {
        "version": "1.0",
        "timestamp": timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn(function),
            "condition": "Success" if success else "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": request_payload,
        "responseContext": response_context,
        "responsePayload": response_payload,
    }


def destination_event(record: dict, *, success: bool) -> dict:
    """The destination record as EventBridge delivers it to rules."""
    return eventbridge_event("lambda", SUCCESS if success else FAILURE, record,
                             resources=[record["requestContext"]["functionArn"]])
