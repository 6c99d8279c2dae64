"""End to end: the EventBridge control plane through the real AWS CLI v2 and
boto3 against a real pipebridge server (AWS-SPEC §1-2; issue "The server")."""
import datetime
import json
import signal
import unittest
import urllib.request
from unittest import mock

import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.exceptions import ClientError

from harness import Server, ServerTest

PIPELINE = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/train"
TARGET = ('[{"Id": "1", "Arn": "arn:aws:sagemaker:us-east-1:000000000000:pipeline/train", "RoleArn": "ROLE", '
          '"SageMakerPipelineParameters": {"PipelineParameterList": [{"Name": "InstanceType", "Value": '
          '"ml.m5.4xlarge"}, {"Name": "InputKey", "Value": "$.detail.param.value"}]}}]')
PATTERN = '{"source": ["com.example"], "detail-type": ["Train"]}'
ROLE = "arn:aws:iam::000000000000:role/events"


def raw_call(url, target, body, headers=None, sign=True, secret="test", when=None):
    """POSTs a body signed with botocore's SigV4 (optionally at another time)."""
    req = botocore.awsrequest.AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, **(headers or {})})
    if sign:
        creds = botocore.credentials.Credentials("test", secret)
        if when is not None:
            fake = mock.MagicMock(wraps=datetime.datetime)
            fake.utcnow.return_value = when
            with mock.patch("botocore.auth.datetime.datetime", fake):
                botocore.auth.SigV4Auth(creds, "events", "us-east-1").add_auth(req)
        else:
            botocore.auth.SigV4Auth(creds, "events", "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body if isinstance(p.body, bytes) else (p.body or b"").encode(),
                               headers=dict(p.headers), method="POST")
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


class ControlPlane(ServerTest):
    def setUp(self):
        self.srv = Server().start()

    def seed(self):
        self.ok("events", "put-rule", "--name", "R", "--event-pattern", PATTERN, "--description", "D",
                "--role-arn", ROLE, "--tags", "Key=k,Value=v")
        self.ok("events", "put-rule", "--name", "R2", "--schedule-expression", "cron(0 8 ? * MON#1 *)",
                "--description", "D", "--role-arn", ROLE)
        return self.ok("events", "put-targets", "--rule", "R", "--event-bus-name", "default", "--targets", TARGET)

    def test_seed_commands_describe_list_tag_state_remove_delete(self):
        out = self.seed()
        self.assertEqual(out, {"FailedEntryCount": 0, "FailedEntries": []})
        rule = self.ok("events", "describe-rule", "--name", "R")
        self.assertEqual(rule["Arn"], "arn:aws:events:us-east-1:000000000000:rule/R")
        self.assertEqual(json.loads(rule["EventPattern"]), json.loads(PATTERN))
        self.assertEqual(rule["State"], "ENABLED")
        self.assertEqual(rule["Description"], "D")
        self.assertEqual(rule["RoleArn"], ROLE)
        self.assertEqual(rule["EventBusName"], "default")
        self.assertEqual(rule["CreatedBy"], "000000000000")
        self.assertEqual(self.ok("events", "describe-rule", "--name", "R2")["ScheduleExpression"],
                         "cron(0 8 ? * MON#1 *)")
        targets = self.ok("events", "list-targets-by-rule", "--rule", "R")["Targets"]
        self.assertEqual(targets, json.loads(TARGET))
        self.assertEqual(self.ok("events", "list-rule-names-by-target", "--target-arn", PIPELINE)["RuleNames"], ["R"])
        arn = rule["Arn"]
        self.assertEqual(self.ok("events", "list-tags-for-resource", "--resource-arn", arn)["Tags"],
                         [{"Key": "k", "Value": "v"}])
        self.ok("events", "tag-resource", "--resource-arn", arn, "--tags", "Key=team,Value=ml", "Key=k,Value=w")
        self.assertEqual(self.ok("events", "list-tags-for-resource", "--resource-arn", arn)["Tags"],
                         [{"Key": "k", "Value": "w"}, {"Key": "team", "Value": "ml"}])
        self.ok("events", "untag-resource", "--resource-arn", arn, "--tag-keys", "k")
        self.assertEqual(self.ok("events", "list-tags-for-resource", "--resource-arn", arn)["Tags"],
                         [{"Key": "team", "Value": "ml"}])
        self.ok("events", "disable-rule", "--name", "R")
        self.assertEqual(self.ok("events", "describe-rule", "--name", "R")["State"], "DISABLED")
        self.ok("events", "enable-rule", "--name", "R")
        self.assertEqual(self.ok("events", "describe-rule", "--name", "R")["State"], "ENABLED")
        err = self.fails("ValidationException", "events", "delete-rule", "--name", "R")
        self.assertIn("Rule can't be deleted since it has targets.", err)
        self.assertEqual(self.ok("events", "remove-targets", "--rule", "R", "--ids", "1"),
                         {"FailedEntryCount": 0, "FailedEntries": []})
        self.assertEqual(self.ok("events", "list-targets-by-rule", "--rule", "R")["Targets"], [])
        self.ok("events", "delete-rule", "--name", "R")
        self.fails("ResourceNotFoundException", "events", "describe-rule", "--name", "R")
        self.ok("events", "delete-rule", "--name", "R")  # idempotent

    def test_paging(self):
        for i in range(5):
            self.ok("events", "put-rule", "--name", "p%d" % i, "--event-pattern", PATTERN)
            self.ok("events", "put-targets", "--rule", "p%d" % i, "--targets",
                    '[{"Id":"t","Arn":"%s","RoleArn":"%s"}]' % (PIPELINE, ROLE))
        events = self.srv.boto()
        pages, token = [], None
        while True:
            kw = {"NamePrefix": "p", "Limit": 2}
            if token:
                kw["NextToken"] = token
            out = events.list_rules(**kw)
            pages.append([r["Name"] for r in out["Rules"]])
            token = out.get("NextToken")
            if not token:
                break
        self.assertEqual(pages, [["p0", "p1"], ["p2", "p3"], ["p4"]])
        names = []
        for page in events.get_paginator("list_rule_names_by_target").paginate(
                TargetArn=PIPELINE, PaginationConfig={"PageSize": 2}):
            names.append(page["RuleNames"])
        self.assertEqual(names, [["p0", "p1"], ["p2", "p3"], ["p4"]])
        # the CLI follows NextToken itself
        self.assertEqual(len(self.ok("events", "list-rules", "--name-prefix", "p", "--page-size", "2")["Rules"]), 5)
        with self.assertRaises(ClientError) as cm:
            events.list_rules(NextToken="not-a-token")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")

    def test_buses(self):
        out = self.ok("events", "create-event-bus", "--name", "orders", "--tags", "Key=a,Value=b")
        self.assertEqual(out["EventBusArn"], "arn:aws:events:us-east-1:000000000000:event-bus/orders")
        self.fails("ResourceAlreadyExistsException", "events", "create-event-bus", "--name", "orders")
        d = self.ok("events", "describe-event-bus", "--name", "orders")
        self.assertEqual((d["Name"], d["Arn"]), ("orders", out["EventBusArn"]))
        # (this CLI's model predates CreationTime; read the wire answer directly)
        status, _, raw = raw_call(self.srv.url, "AWSEvents.DescribeEventBus", b'{"Name":"orders"}')
        self.assertEqual(status, 200)
        self.assertIsInstance(raw["CreationTime"], float)
        names = [b["Name"] for b in self.ok("events", "list-event-buses")["EventBuses"]]
        self.assertEqual(names, ["default", "orders"])
        self.ok("events", "put-rule", "--name", "x", "--event-bus-name", "orders", "--event-pattern", PATTERN)
        self.assertEqual(self.ok("events", "describe-rule", "--name", "x", "--event-bus-name",
                                 out["EventBusArn"])["Arn"],
                         "arn:aws:events:us-east-1:000000000000:rule/orders/x")
        self.fails("ValidationException", "events", "delete-event-bus", "--name", "orders")
        self.ok("events", "delete-rule", "--name", "x", "--event-bus-name", "orders")
        self.ok("events", "delete-event-bus", "--name", "orders")
        self.fails("ResourceNotFoundException", "events", "describe-event-bus", "--name", "orders")
        err = self.fails("ValidationException", "events", "delete-event-bus", "--name", "default")
        self.assertIn("Cannot delete event bus default.", err)

    def test_errors(self):
        self.seed()
        more = json.dumps([{"Id": str(i), "Arn": PIPELINE, "RoleArn": ROLE} for i in range(2, 7)])
        err = self.fails("LimitExceededException", "events", "put-targets", "--rule", "R", "--targets", more)
        self.assertIn("The requested resource exceeds the maximum number allowed.", err)
        self.assertEqual(len(self.ok("events", "list-targets-by-rule", "--rule", "R")["Targets"]), 1)
        self.ok("events", "create-event-bus", "--name", "custom")
        err = self.fails("ValidationException", "events", "put-rule", "--name", "S", "--event-bus-name", "custom",
                         "--schedule-expression", "rate(5 minutes)")
        self.assertIn("ScheduleExpression is supported only on the default event bus.", err)
        err = self.fails("InvalidEventPatternException", "events", "put-rule", "--name", "P", "--event-pattern",
                         '{"source": []}')
        self.assertIn("Event pattern is not valid. Reason: Empty arrays are not allowed", err)
        self.fails("ResourceNotFoundException", "events", "describe-rule", "--name", "P")  # nothing half-written
        err = self.fails("ValidationException", "events", "put-rule", "--name", "S",
                         "--schedule-expression", "rate(1 minutes)")
        self.assertIn("Parameter ScheduleExpression is not valid.", err)
        err = self.fails("ResourceNotFoundException", "events", "describe-rule", "--name", "nope")
        self.assertIn("Rule nope does not exist on EventBus default.", err)
        err = self.fails("ResourceNotFoundException", "events", "enable-rule", "--name", "nope")
        self.fails("InvalidSignatureException", "events", "list-rules", secret="wrong")
        err = self.fails("ValidationException", "events", "put-rule", "--name", "bad name!", "--event-pattern",
                         PATTERN)
        self.assertIn("Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular "
                      "expression pattern: [\\.\\-_A-Za-z0-9]+", err)

    def test_target_kinds(self):
        """Any target ARN is stored and echoed, with the members of its kind, as
        AWS does; a SageMaker pipeline target needs a RoleArn."""
        self.ok("events", "put-rule", "--name", "K", "--event-pattern", PATTERN)
        kinds = [
            {"Id": "lambda", "Arn": "arn:aws:lambda:us-east-1:000000000000:function:f"},
            {"Id": "bus", "Arn": "arn:aws:events:us-east-1:000000000000:event-bus/other",
             "InputPath": "$.detail"},
            {"Id": "sqs", "Arn": "arn:aws:sqs:us-east-1:000000000000:q.fifo",
             "SqsParameters": {"MessageGroupId": "g"}},
            {"Id": "ecs", "Arn": "arn:aws:ecs:us-east-1:000000000000:cluster/c", "RoleArn": ROLE,
             "EcsParameters": {"TaskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/t:1",
                               "TaskCount": 2, "LaunchType": "FARGATE"}},
            {"Id": "kinesis", "Arn": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "RoleArn": ROLE,
             "KinesisParameters": {"PartitionKeyPath": "$.id"},
             "InputTransformer": {"InputPathsMap": {"s": "$.detail.state"},
                                  "InputTemplate": '{"state": <s>, "rule": <aws.events.rule-name>}'}},
        ]
        self.assertEqual(self.ok("events", "put-targets", "--rule", "K", "--targets", json.dumps(kinds)),
                         {"FailedEntryCount": 0, "FailedEntries": []})
        listed = self.ok("events", "list-targets-by-rule", "--rule", "K")["Targets"]
        self.assertEqual(sorted(listed, key=lambda t: t["Id"]), sorted(kinds, key=lambda t: t["Id"]))
        self.assertEqual(self.ok("events", "list-rule-names-by-target", "--target-arn",
                                 "arn:aws:events:us-east-1:000000000000:event-bus/other")["RuleNames"], ["K"])

        # a SageMaker pipeline target without RoleArn: AWS's ValidationException, nothing stored
        self.ok("events", "remove-targets", "--rule", "K", "--ids", "lambda")
        err = self.fails("ValidationException", "events", "put-targets", "--rule", "K", "--targets",
                         json.dumps([{"Id": "p", "Arn": PIPELINE}]))
        self.assertIn("RoleArn is required for target %s." % PIPELINE, err)
        with self.assertRaises(ClientError) as cm:
            self.srv.boto().put_targets(Rule="K", Targets=[
                {"Id": "ok", "Arn": PIPELINE, "RoleArn": ROLE}, {"Id": "p", "Arn": PIPELINE}])
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")
        self.assertEqual(cm.exception.response["Error"]["Message"], "RoleArn is required for target %s." % PIPELINE)
        self.assertEqual(len(self.ok("events", "list-targets-by-rule", "--rule", "K")["Targets"]), 4)
        self.ok("events", "put-targets", "--rule", "K", "--targets",
                json.dumps([{"Id": "p", "Arn": PIPELINE, "RoleArn": ROLE}]))

        # the members of other kinds are still type-checked, and placeholders too
        status, _, body = raw_call(self.srv.url, "AWSEvents.PutTargets", json.dumps(
            {"Rule": "K", "Targets": [{"Id": "e", "Arn": "arn:aws:ecs:us-east-1:000000000000:cluster/c",
                                       "EcsParameters": "not an object"}]}).encode())
        self.assertEqual((status, body["__type"]), (400, "SerializationException"))
        err = self.fails("ValidationException", "events", "put-targets", "--rule", "K", "--targets", json.dumps(
            [{"Id": "x", "Arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
              "InputTransformer": {"InputPathsMap": {"s": "$.detail.state"},
                                   "InputTemplate": '"<s> and <status>"'}}]))
        self.assertIn("InputTemplate for target x contains invalid placeholder status.", err)

    def test_signed_twenty_minutes_ago_and_raw_protocol(self):
        url = self.srv.url
        when = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
        status, headers, body = raw_call(url, "AWSEvents.ListRules", b"{}", when=when)
        self.assertEqual(status, 400)
        self.assertEqual(body["__type"], "InvalidSignatureException")
        self.assertIn("Signature expired", body["message"])
        self.assertEqual(headers.get("X-Amzn-ErrorType"), "InvalidSignatureException")
        status, headers, body = raw_call(url, "AWSEvents.ListRules", b"{}", sign=False)
        self.assertEqual((status, body["__type"]), (400, "MissingAuthenticationTokenException"))
        status, headers, body = raw_call(url, "AWSEvents.FlyToTheMoon", b"{}")
        self.assertEqual((status, body["__type"]), (400, "UnknownOperationException"))
        status, headers, body = raw_call(url, "AWSEvents.ListRules", b"not json")
        self.assertEqual((status, body["__type"]), (400, "SerializationException"))
        status, headers, body = raw_call(url, "AWSEvents.ListRules", b"{}")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/x-amz-json-1.1")
        self.assertRegex(headers["x-amzn-RequestId"], r"^[0-9a-f-]{36}$")
        self.assertIn("Date", headers)
        with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
            self.assertEqual(json.loads(r.read()), {"status": "ok"})

    def test_review_regressions(self):
        """Inputs that once changed the wrong resource or hid state."""
        self.seed()
        url = self.srv.url
        # a NUL inside a name must not pass as the shorter name
        status, _, body = raw_call(url, "AWSEvents.PutRule",
                                   b'{"Name":"R\\u0000evil","EventPattern":"{\\"source\\":[\\"b\\"]}"}')
        self.assertEqual((status, body["__type"]), (400, "SerializationException"))
        self.assertEqual(json.loads(self.ok("events", "describe-rule", "--name", "R")["EventPattern"]),
                         json.loads(PATTERN))
        # tags given through another spelling of the rule's ARN land on the rule itself
        alias = "arn:aws:events:us-east-1:000000000000:rule/default/R"
        self.ok("events", "tag-resource", "--resource-arn", alias, "--tags", "Key=via,Value=alias")
        tags = self.ok("events", "list-tags-for-resource", "--resource-arn",
                       "arn:aws:events:us-east-1:000000000000:rule/R")["Tags"]
        self.assertIn({"Key": "via", "Value": "alias"}, tags)
        # target Input must be JSON; unknown members are refused, not stored
        err = self.fails("ValidationException", "events", "put-targets", "--rule", "R", "--targets",
                         '[{"Id":"j","Arn":"%s","Input":"not json"}]' % PIPELINE)
        self.assertIn("Input for target j is not valid JSON text.", err)
        status, _, body = raw_call(url, "AWSEvents.PutTargets", json.dumps(
            {"Rule": "R", "Targets": [{"Id": "u", "Arn": PIPELINE, "Surprise": {"x": 1}}]}).encode())
        self.assertEqual((status, body["__type"]), (400, "SerializationException"))
        status, _, body = raw_call(url, "AWSEvents.RemoveTargets", b'{"Rule":"R","Ids":["1",""]}')
        self.assertEqual((status, body["__type"]), (400, "ValidationException"))
        self.assertIn("at 'ids.2.member' failed to satisfy constraint: Member must have length greater than or "
                      "equal to 1", body["message"])
        # a bus ARN of another account is not the caller's bus
        status, _, body = raw_call(url, "AWSEvents.DescribeRule", json.dumps(
            {"Name": "R", "EventBusName": "arn:aws:events:us-east-1:111111111111:event-bus/default"}).encode())
        self.assertEqual((status, body["__type"]), (400, "ResourceNotFoundException"))
        self.assertIn("does not exist", body["message"])
        self.assertEqual(self.ok("events", "describe-rule", "--name", "R", "--event-bus-name",
                                 "arn:aws:events:us-east-1:000000000000:event-bus/default")["Name"], "R")
        # the default bus has no creation time to report
        status, _, body = raw_call(url, "AWSEvents.DescribeEventBus", b"{}")
        self.assertEqual(status, 200)
        self.assertNotIn("CreationTime", body)
        # error messages cut at a character boundary stay valid UTF-8
        status, _, body = raw_call(url, "AWSEvents.PutRule",
                                   json.dumps({"Name": "a" + "\u00e9" * 200, "EventPattern": PATTERN}).encode())
        self.assertEqual(status, 400)
        self.assertIn("failed to satisfy constraint", body["message"])

    def test_test_event_pattern(self):
        ev = json.dumps({"id": "1", "account": "000000000000", "source": "com.example", "time":
                         "2026-11-25T10:00:00Z", "region": "us-east-1", "detail-type": "Train", "detail": {}})
        self.assertEqual(self.ok("events", "test-event-pattern", "--event-pattern", PATTERN, "--event", ev),
                         {"Result": True})
        self.assertEqual(self.srv.boto().test_event_pattern(EventPattern='{"source":["other"]}', Event=ev)["Result"],
                         False)
        err = self.fails("ValidationException", "events", "test-event-pattern", "--event-pattern", PATTERN,
                         "--event", '{"source":"x"}')
        self.assertIn("Parameter Event is not valid.", err)


class Durability(unittest.TestCase):
    def test_restart_and_kill_9_keep_state(self):
        srv = Server().start()
        try:
            rc, _, err = srv.aws("events", "put-rule", "--name", "keep", "--event-pattern", PATTERN,
                                 "--tags", "Key=a,Value=b")
            self.assertEqual(rc, 0, err)
            rc, _, err = srv.aws("events", "put-targets", "--rule", "keep", "--targets", TARGET)
            self.assertEqual(rc, 0, err)
            self.assertEqual(srv.stop(signal.SIGTERM), 0)  # graceful
            srv.start()
            rc, out, err = srv.aws("events", "list-targets-by-rule", "--rule", "keep")
            self.assertEqual(out["Targets"], json.loads(TARGET))
            rc, _, err = srv.aws("events", "put-rule", "--name", "acked", "--event-pattern", PATTERN)
            self.assertEqual(rc, 0, err)
            srv.stop(signal.SIGKILL)  # acknowledged data must survive kill -9
            srv.start()
            rc, out, err = srv.aws("events", "describe-rule", "--name", "acked")
            self.assertEqual((rc, out["Name"]), (0, "acked"), err)
            rc, out, err = srv.aws("events", "list-tags-for-resource", "--resource-arn",
                                   "arn:aws:events:us-east-1:000000000000:rule/keep")
            self.assertEqual(out["Tags"], [{"Key": "a", "Value": "b"}])
        finally:
            srv.cleanup()

    def test_max_connections(self):
        """Each connection has a thread of its own, up to --max-connections:
        one more is closed at once, and a freed place is taken again."""
        import http.client
        import time
        srv = Server(extra=["--max-connections", "3"]).start()
        try:
            held = []
            for _ in range(3):
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                held.append(c)
            extra = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
                extra.request("GET", "/healthz")
                extra.getresponse().read()
            extra.close()
            held.pop().close()
            deadline = time.time() + 10
            while True:  # the server notices the close on its own time
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
                try:
                    c.request("GET", "/healthz")
                    r = c.getresponse()
                    r.read()
                    self.assertEqual(r.status, 200)
                    break
                except (ConnectionError, http.client.HTTPException, OSError):
                    c.close()
                    self.assertLess(time.time(), deadline, "a freed connection place was not taken again")
                    time.sleep(0.05)
            c.close()
            for c in held:
                c.close()
        finally:
            srv.stop()
            srv.cleanup()

    def test_refuses_public_address_with_only_dev_credential(self):
        srv = Server(extra=[])
        import subprocess
        p = subprocess.run([__import__("harness").PB, "serve", "--listen", "0.0.0.0:0", "--data-dir", srv.data_dir],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("development", p.stderr)
        srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
