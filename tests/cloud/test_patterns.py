"""EventBridge pattern matching, table-driven from AWS's documented examples (EventBridge User Guide:
"Event patterns", "Content filtering", "Arrays", "Null values and empty strings"; Event Ruler's README),
plus the original design's rule against a real Lambda destination record."""

from __future__ import annotations

import copy

import pytest

from cloud.events import destination_event, destination_record, eventbridge_event
from cloud.patterns import InvalidPattern, matches, validate

# The example event of the User Guide and Event Ruler's README.
EC2 = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {"c-count": 5, "d-count": 3, "x-limit": 301.8, "source-ip": "10.0.0.33",
               "instance-id": "i-000000aaaaaa00000", "state": "running"},
}


def ec2(**detail: object) -> dict:
    event = copy.deepcopy(EC2)
    event["detail"].update(detail)
    return event


def without(key: str) -> dict:
    event = copy.deepcopy(EC2)
    del event["detail"][key]
    return event


EMPLOYEES = {"employees": [{"firstName": "John", "lastName": "Doe"},
                           {"firstName": "Anna", "lastName": "Smith"},
                           {"firstName": "Peter", "lastName": "Jones"}]}
NULLS = {"source": "aws.autoscaling", "resources": [],
         "detail": {"eventVersion": "", "responseElements": None}}
CW = {"source": "aws.cloudwatch", "metricName": "NetworkIn", "namespace": "AWS/EC2", "metricType": "X",
      "detail": {"source": "x", "detail-type": "CloudWatch Alarm State Change"}}

CASES = [
    # -- exact values, AND across fields, OR within a field
    ("simple match", {"detail-type": ["EC2 Instance State-change Notification"],
                      "resources": EC2["resources"], "detail": {"state": ["initializing", "running"]}},
     EC2, True),
    ("simple mismatch", {"detail": {"state": ["initializing", "stopped"]}}, EC2, False),
    ("AND: one field fails", {"source": ["aws.ec2"], "detail": {"state": ["stopped"]}}, EC2, False),
    ("OR of sources", {"source": ["aws.ec2", "aws.fargate"]}, EC2, True),
    ("field missing", {"detail": {"nope": ["x"]}}, EC2, False),
    ("case-sensitive", {"source": ["AWS.EC2"]}, EC2, False),
    ("number equal", {"detail": {"c-count": [5]}}, EC2, True),
    ("number by value", {"detail": {"x-limit": [3.018e2]}}, EC2, True),
    ("number is not a string", {"detail": {"c-count": ["5"]}}, EC2, False),
    ("string is not a number", {"detail": {"state": [5]}}, ec2(state="5"), False),
    ("true", {"detail": {"flag": [True]}}, ec2(flag=True), True),
    ("true is not 1", {"detail": {"flag": [True]}}, ec2(flag=1), False),
    ("1 is not true", {"detail": {"flag": [1]}}, ec2(flag=True), False),
    ("false", {"detail": {"flag": [False]}}, ec2(flag=False), True),
    # -- null and empty strings (not interchangeable)
    ("empty string", {"detail": {"eventVersion": [""]}}, NULLS, True),
    ("null", {"detail": {"responseElements": [None]}}, NULLS, True),
    ("empty string is not null", {"detail": {"responseElements": [""]}}, NULLS, False),
    ("null is not empty string", {"detail": {"eventVersion": [None]}}, NULLS, False),
    # -- arrays
    ("event array intersects", {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                                              "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f"]},
     {"resources": ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b",
                    "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]}, True),
    ("event array disjoint", {"resources": ["a", "b"]}, {"resources": ["c", "d"]}, False),
    ("empty event array", {"resources": ["a"]}, {"resources": []}, False),
    ("nested event arrays", {"ids": [3]}, {"ids": [[1, 2], [3]]}, True),
    ("array of objects", {"employees": {"firstName": ["Anna"]}}, EMPLOYEES, True),
    ("array consistency", {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}, EMPLOYEES, False),
    ("same element", {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}, EMPLOYEES, True),
    ("object pattern, scalar value", {"detail": {"state": {"name": ["running"]}}}, EC2, False),
    # -- prefix / suffix / equals-ignore-case / wildcard
    ("prefix", {"time": [{"prefix": "2017-10-02"}]}, EC2, True),
    ("prefix mismatch", {"time": [{"prefix": "2017-10-03"}]}, EC2, False),
    ("prefix eu regions", {"source": ["aws.autoscaling"], "region": [{"prefix": "eu-"}]},
     {"source": "aws.autoscaling", "region": "eu-west-1"}, True),
    ("prefix ignores numbers", {"detail": {"c-count": [{"prefix": "5"}]}}, EC2, False),
    ("prefix ignore case", {"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}},
     {"detail": {"service": "EVENTBRIDGE"}}, True),
    ("suffix", {"source": [{"suffix": "ec2"}]}, EC2, True),
    ("suffix png", {"FileName": [{"suffix": ".png"}]}, {"FileName": "image.png"}, True),
    ("suffix mismatch", {"FileName": [{"suffix": ".png"}]}, {"FileName": "image.jpg"}, False),
    ("suffix ignore case", {"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}},
     {"detail": {"FileName": "A.PNG"}}, True),
    ("equals-ignore-case", {"source": [{"equals-ignore-case": "AWS.EC2"}]}, EC2, True),
    ("equals-ignore-case name", {"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "ALICE"}, True),
    ("equals-ignore-case mismatch", {"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "alicia"}, False),
    ("wildcard", {"source": [{"wildcard": "Simple*Service"}]}, {"source": "SimpleNotificationService"}, True),
    ("wildcard empty run", {"source": [{"wildcard": "Simple*Service"}]}, {"source": "SimpleService"}, True),
    ("wildcard mismatch", {"source": [{"wildcard": "Simple*Service"}]}, {"source": "SimpleServices"}, False),
    ("wildcard arn", {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
     {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/myEventBus"}, True),
    ("wildcard path", {"FilePath": [{"wildcard": "dir/*.png"}]}, {"FilePath": "dir/dir/image.png"}, True),
    ("wildcard path mismatch", {"FilePath": [{"wildcard": "dir/*.png"}]},
     {"FilePath": "dir/image.jpg"}, False),
    ("wildcard escaped star", {"k": [{"wildcard": "a\\*b"}]}, {"k": "a*b"}, True),
    ("wildcard escaped star is literal", {"k": [{"wildcard": "a\\*b"}]}, {"k": "axb"}, False),
    ("wildcard escaped backslash", {"k": [{"wildcard": "a\\\\*"}]}, {"k": "a\\bc"}, True),
    ("wildcard regex chars literal", {"k": [{"wildcard": "a.c"}]}, {"k": "abc"}, False),
    # -- anything-but
    ("anything-but string", {"detail": {"state": [{"anything-but": "initializing"}]}}, EC2, True),
    ("anything-but string excluded", {"detail": {"state": [{"anything-but": "running"}]}}, EC2, False),
    ("anything-but number", {"detail": {"x-limit": [{"anything-but": 123}]}}, EC2, True),
    ("anything-but number excluded", {"detail": {"x-limit": [{"anything-but": 123}]}},
     ec2(**{"x-limit": 123}),
     False),
    ("anything-but list", {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}, EC2, True),
    ("anything-but list excluded", {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
     ec2(state="stopped"), False),
    ("anything-but numbers", {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}, EC2, True),
    ("anything-but numbers excluded", {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
     ec2(**{"x-limit": 200}), False),
    ("anything-but CloudTrail", {"detail-type": [{"anything-but": "AWS API Call via CloudTrail"}]},
     EC2, True),
    ("anything-but sources", {"source": [{"anything-but": ["aws.ec2", "aws.s3"]}]}, EC2, False),
    ("anything-but prefix", {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, EC2, True),
    ("anything-but prefix excluded", {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
     ec2(state="initializing"), False),
    ("anything-but aws. prefix", {"source": [{"anything-but": {"prefix": "aws."}}]},
     {"source": "corb.sms"}, True),
    ("anything-but suffix", {"FileName": [{"anything-but": {"suffix": ".png"}}]},
     {"FileName": "a.jpg"}, True),
    ("anything-but suffix excluded", {"FileName": [{"anything-but": {"suffix": ".png"}}]},
     {"FileName": "a.png"},
     False),
    ("anything-but ignore case", {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]},
     {"state": "INITIALIZING"}, False),
    ("anything-but ignore case other", {"state": [{"anything-but": {"equals-ignore-case": ["a", "b"]}}]},
     {"state": "C"}, True),
    ("anything-but wildcard", {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
     {"FilePath": "/usr/lib/libc.so"}, False),
    ("anything-but wildcard other", {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
     {"FilePath": "/usr/bin/ls"}, True),
    ("anything-but missing field", {"detail": {"nope": [{"anything-but": "x"}]}}, EC2, False),
    ("anything-but array: one element not excluded", {"tags": [{"anything-but": "a"}]}, {"tags": ["a", "b"]},
     True),
    ("anything-but array: all excluded", {"tags": [{"anything-but": ["a", "b"]}]},
     {"tags": ["a", "b"]}, False),
    # -- numeric
    ("numeric all", {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}],
                                "d-count": [{"numeric": ["<", 10]}],
                                "x-limit": [{"numeric": ["=", 3.018e2]}]}}, EC2, True),
    ("numeric upper bound inclusive", {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}, EC2, True),
    ("numeric above", {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}},
     ec2(**{"c-count": 6}), False),
    ("numeric lower bound exclusive", {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}},
     ec2(**{"c-count": 0}), False),
    ("numeric >=", {"n": [{"numeric": [">=", 0]}]}, {"n": 0}, True),
    ("numeric not on strings", {"n": [{"numeric": [">", 0]}]}, {"n": "5"}, False),
    ("numeric not on booleans", {"n": [{"numeric": [">", 0]}]}, {"n": True}, False),
    ("numeric in array", {"n": [{"numeric": [">", 10]}]}, {"n": [1, 20]}, True),
    # -- cidr
    ("cidr", {"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, EC2, True),
    ("cidr outside", {"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, ec2(**{"source-ip": "10.0.1.1"}),
     False),
    ("cidr /8", {"detail": {"source-ip": [{"cidr": "10.0.0.0/8"}]}}, EC2, True),
    ("cidr ipv6", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8::1"}, True),
    ("cidr ipv6 outside", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db9::1"}, False),
    ("cidr v4 against v6", {"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": "::1"}, False),
    ("cidr not an address", {"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": "ten"}, False),
    # -- exists (leaf nodes only)
    ("exists false, missing", {"detail": {"c-count": [{"exists": False}]}},
     {"detail-type": ["EC2 Instance State-change Notification"],
      "detail": {"state": ["initializing", "running"]}},
     True),
    ("exists false, not a leaf", {"detail": {"c-count": [{"exists": False}]}},
     {"detail": {"state": ["initializing", "running"], "c-count": {"c1": 100}}}, True),
    ("exists false, present", {"detail": {"c-count": [{"exists": False}]}}, EC2, False),
    ("exists true", {"detail": {"description": [{"exists": True}]}}, ec2(description="hi"), True),
    ("exists true, missing", {"detail": {"description": [{"exists": True}]}}, EC2, False),
    ("exists true, object", {"detail": {"c-count": [{"exists": True}]}},
     ec2(**{"c-count": {"c1": 1}}), False),
    ("exists true, null is a value", {"detail": {"responseElements": [{"exists": True}]}}, NULLS, True),
    ("exists false under a missing parent", {"detail": {"a": {"b": [{"exists": False}]}}}, EC2, True),
    ("exists false, parent is a scalar", {"detail": {"state": {"b": [{"exists": False}]}}}, EC2, True),
    ("exists true, empty array", {"resources": [{"exists": True}]}, NULLS, False),
    ("without, then exists false", {"detail": {"state": [{"exists": False}]}}, without("state"), True),
    # -- $or
    ("$or first", {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]},
                                                         {"namespace": ["AWS/EC2", "AWS/ES"]}]}, CW, True),
    ("$or none", {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]},
                                                        {"namespace": ["AWS/ES"]}]}, CW, False),
    ("$or AND outside", {"source": ["aws.ec2"], "$or": [{"metricName": ["NetworkIn"]}, {"namespace": ["x"]}]},
     CW, False),
    ("$or parallel", {"$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
                      "detail": {"$or": [{"source": ["aws.cloudwatch"]},
                                         {"detail-type": ["CloudWatch Alarm State Change"]}]}}, CW, True),
    ("$or with AND inside", {"source": ["aws.cloudwatch"], "$or": [
        {"metricName": ["CPUUtilization"]}, {"metricType": ["X"], "namespace": ["AWS/EC2", "AWS/ES"]},
        {"scope": ["Service"]}]}, CW, True),
    ("$or nested", {"source": ["aws.cloudwatch"], "$or": [
        {"metricName": ["CPUUtilization"]},
        {"metricType": ["X"], "namespace": ["AWS/EC2"], "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]}]},
     {**CW, "spaceId": 1000}, True),
    ("$or nested none", {"source": ["aws.cloudwatch"], "$or": [
        {"metricName": ["CPUUtilization"]},
        {"metricType": ["X"], "namespace": ["AWS/EC2"], "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]}]},
     CW, False),
    ("$or inside detail with numeric", {"detail": {"$or": [{"c-count": [{"numeric": [">", 10]}]},
                                                           {"d-count": [{"numeric": ["<", 10]}]}]}},
     EC2, True),
    # -- the documented complex example
    ("complex", {"time": [{"prefix": "2017-10-02"}], "detail": {
        "state": [{"anything-but": "initializing"}], "c-count": [{"numeric": [">", 0, "<=", 5]}],
        "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"anything-but": [100, 200, 300]}],
        "source-ip": [{"cidr": "10.0.0.0/8"}]}}, EC2, True),
    ("mixed alternatives", {"detail": {"state": ["stopped", {"prefix": "run"}]}}, EC2, True),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches(pattern: dict, event: dict, expected: bool) -> None:
    validate(pattern)
    assert matches(pattern, event) is expected


INVALID = [
    ("not an object", ["source"], "JSON object"),
    ("empty pattern", {}, "empty"),
    ("empty nested object", {"detail": {}}, "empty"),
    ("bare value", {"source": "aws.ec2"}, "object or an array"),
    ("empty array", {"source": []}, "empty arrays"),
    ("nested array", {"source": [["aws.ec2"]]}, "neither a value"),
    ("unknown operator", {"source": [{"contains": "ec2"}]}, "unknown operator"),
    ("two operators", {"source": [{"prefix": "a", "suffix": "b"}]}, "exactly one key"),
    ("prefix number", {"source": [{"prefix": 1}]}, "needs a string"),
    ("prefix bad nested", {"source": [{"prefix": {"wildcard": "a*"}}]}, "equals-ignore-case"),
    ("equals-ignore-case list", {"source": [{"equals-ignore-case": ["a"]}]}, "needs a string"),
    ("numeric not a list", {"n": [{"numeric": 5}]}, "numeric needs"),
    ("numeric odd length", {"n": [{"numeric": [">", 0, "<"]}]}, "numeric needs"),
    ("numeric bad op", {"n": [{"numeric": ["!=", 3]}]}, "unknown comparison"),
    ("numeric not a number", {"n": [{"numeric": [">", "0"]}]}, "not a number"),
    ("numeric bool", {"n": [{"numeric": [">", True]}]}, "not a number"),
    ("numeric two lower bounds", {"n": [{"numeric": [">", 0, ">=", 5]}]}, "lower bound"),
    ("numeric two upper bounds", {"n": [{"numeric": ["<", 0, "<=", 5]}]}, "lower bound"),
    ("numeric upper bound first", {"n": [{"numeric": ["<", 1, ">", 0]}]}, "followed by an upper"),
    ("numeric upper bound first, wide", {"n": [{"numeric": ["<=", 10, ">=", 1]}]}, "followed by an upper"),
    ("numeric empty range", {"n": [{"numeric": [">", 10, "<", 5]}]}, "below the upper"),
    ("numeric = combined", {"n": [{"numeric": ["=", 1, "<", 5]}]}, "'='"),
    ("numeric out of range", {"n": [{"numeric": [">", 1e10]}]}, "outside"),
    ("exists not bool", {"n": [{"exists": "yes"}]}, "true or false"),
    ("cidr bad prefix", {"ip": [{"cidr": "10.0.0.0/33"}]}, "not an IP address range"),
    ("cidr nonsense", {"ip": [{"cidr": "nope"}]}, "not an IP address range"),
    ("wildcard consecutive", {"k": [{"wildcard": "a**b"}]}, "consecutive"),
    ("wildcard bad escape", {"k": [{"wildcard": "a\\b"}]}, "backslash"),
    ("wildcard trailing backslash", {"k": [{"wildcard": "a\\"}]}, "backslash"),
    ("anything-but mixed list", {"k": [{"anything-but": ["a", 1]}]}, "only strings or only numbers"),
    ("anything-but empty list", {"k": [{"anything-but": []}]}, "non-empty"),
    ("anything-but bool", {"k": [{"anything-but": True}]}, "anything-but needs"),
    ("anything-but null", {"k": [{"anything-but": None}]}, "anything-but needs"),
    ("anything-but numeric", {"k": [{"anything-but": {"numeric": [">", 1]}}]}, "unsupported nested"),
    ("anything-but prefix list", {"k": [{"anything-but": {"prefix": ["a"]}}]}, "needs a string"),
    ("anything-but empty prefix", {"k": [{"anything-but": {"prefix": ""}}]}, "prefix needs a non-empty"),
    ("anything-but empty suffix", {"k": [{"anything-but": {"suffix": ""}}]}, "suffix needs a non-empty"),
    ("anything-but bad wildcard", {"k": [{"anything-but": {"wildcard": "**"}}]}, "consecutive"),
    ("$or single", {"$or": [{"a": ["x"]}]}, "at least two"),
    ("$or not objects", {"$or": [{"a": ["x"]}, ["b"]]}, "at least two objects"),
    ("$or invalid branch", {"$or": [{"a": ["x"]}, {"b": "y"}]}, "$or[1].b"),
]


@pytest.mark.parametrize(("pattern", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_patterns(pattern: object, message: str) -> None:
    with pytest.raises(InvalidPattern, match=None) as info:
        validate(pattern)
    assert message in str(info.value)


def test_error_says_where() -> None:
    with pytest.raises(InvalidPattern, match=r"detail\.responsePayload\.command_type: must be an object or"):
        validate({"detail": {"responsePayload": {"command_type": "request_cleaning"}}})


# -- the original design's rule, verbatim, against what Lambda's destination actually sends ---------

ORIGINAL_RULE = {"detail": {"responsePayload": {"command_type": ["request_cleaning"]}}}


def _destination(response: dict, *, success: bool = True) -> dict:
    record = destination_record(function="bot.handlers.parse.handle", request_id="c0ffee-1",
                                request_payload={"source": "corb.sms",
                                                 "detail": {"body": "request cleaning"}},
                                response_payload=response, success=success, attempts=1)
    return destination_event(record, success=success)


def test_original_rule_matches_a_success_destination_record() -> None:
    validate(ORIGINAL_RULE)
    event = _destination({"command_type": "request_cleaning", "area": "lobby", "note": "spill"})
    assert event["source"] == "lambda"
    assert event["detail-type"] == "Lambda Function Invocation Result - Success"
    assert matches(ORIGINAL_RULE, event)


@pytest.mark.parametrize("event", [
    _destination({"command_type": "cleaning_report"}),
    _destination({"kind": "segment_analysed"}),
    eventbridge_event("corb.sms", "SMS Command", {"command_type": "request_cleaning"}),  # not nested so
], ids=["other command", "other result", "sms event"])
def test_original_rule_ignores_other_events(event: dict) -> None:
    assert not matches(ORIGINAL_RULE, event)


def test_failure_records_have_no_response_command() -> None:
    error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []}
    failure = _destination(error, success=False)
    assert not matches(ORIGINAL_RULE, failure)
    assert matches({"source": ["lambda"], "detail-type": ["Lambda Function Invocation Result - Failure"]},
                   failure)
    assert matches({"detail": {"responseContext": {"functionError": [{"exists": True}]}}}, failure)


def test_matching_does_not_mutate() -> None:
    pattern = copy.deepcopy(ORIGINAL_RULE)
    event = _destination({"command_type": "request_cleaning"})
    before = copy.deepcopy(event)
    matches(pattern, event)
    assert pattern == ORIGINAL_RULE and event == before
