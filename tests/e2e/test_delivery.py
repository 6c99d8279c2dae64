"""End to end: delivery (AWS-SPEC §2.2 PutEvents, §2.5 the SageMaker pipeline
target, §3 events, §8 retries and dead letters) through the real AWS CLI v2
and boto3 against a real pipebridge server: events put on the bus start
pipeline executions run by the local runner, a pipeline's status-change
event starts another pipeline, failures end as dead letters, and a kill -9
during a PutEvents load neither loses an acknowledged event nor starts an
execution twice."""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from botocore.exceptions import BotoCoreError, ClientError

import harness
from harness import PB, Server, ServerTest, start

ACCOUNT = "000000000000"
PIPELINE_ARN = "arn:aws:sagemaker:us-east-1:%s:pipeline/" % ACCOUNT
ROLE = "arn:aws:iam::000000000000:role/r"
DLQ = "arn:aws:sqs:us-east-1:000000000000:dlq"
STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ENVELOPE_KEYS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]


def processing(name, entrypoint):
    """A Processing step running `entrypoint` (a list) in its working directory."""
    return {"Name": name, "Type": "Processing", "Arguments": {
        "AppSpecification": {"ImageUri": "local", "ContainerEntrypoint": entrypoint},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 1}},
        "RoleArn": ROLE}}


def definition(steps, params=()):
    return json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": list(params), "Steps": steps})


# The seed's pipeline: InstanceType has a default, InputKey has none; the step
# writes InputKey to key.txt ($0 of `sh -c`).
SEED = definition(
    [processing("Fetch", ["/bin/sh", "-c", "echo $0 > key.txt", {"Get": "Parameters.InputKey"}])],
    params=[{"Name": "InstanceType", "Type": "String", "DefaultValue": "ml.m5.large"},
            {"Name": "InputKey", "Type": "String"}])

# Writes its Upstream parameter to upstream.txt.
CHAINED = definition(
    [processing("Record", ["/bin/sh", "-c", 'printf %s "$0" > upstream.txt', {"Get": "Parameters.Upstream"}])],
    params=[{"Name": "Upstream", "Type": "String"}])

TRIVIAL = definition([processing("Noop", ["/bin/true"])])

# One execution per event: EventId says which event started it.
PER_EVENT = definition([processing("Noop", ["/bin/true"])],
                       params=[{"Name": "EventId", "Type": "String", "DefaultValue": "none"}])


def raw_events(url, op, body):
    """An EventBridge request, answered as (status, JSON body): what the server
    itself says, with no client-side validation."""
    return harness.raw(url, op, body, service="events", prefix="AWSEvents")


METRIC_LINE = re.compile(r"^([a-z_]+)\{([^}]*)\} (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metrics(url):
    """GET /metrics as {(name, ((label, value), ...)): value}."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        m = METRIC_LINE.match(line)
        if m:
            out[(m.group(1), tuple(sorted(LABEL.findall(m.group(2)))))] = float(m.group(3))
    return out


def metric(url, name, bus="default", rule=None):
    """One counter of the default scope; 0 when the series does not exist yet."""
    labels = {"account": ACCOUNT, "region": "us-east-1", "bus": bus}
    if rule is not None:
        labels["rule"] = rule
    return metrics(url).get((name, tuple(sorted(labels.items()))), 0)


class Base(ServerTest):
    def setUp(self):
        self.srv = start(Server())
        self.sm = self.srv.boto("sagemaker")
        self.events = self.srv.boto("events")

    def log(self):
        return "server log:\n" + "".join(self.srv.log[-40:])

    def create(self, name, defn):
        return self.ok("sagemaker", "create-pipeline", "--pipeline-name", name, "--role-arn", ROLE,
                       "--pipeline-definition", defn)["PipelineArn"]

    def rule(self, name, pattern, targets, bus=None):
        extra = ["--event-bus-name", bus] if bus else []
        self.ok("events", "put-rule", "--name", name, "--event-pattern", json.dumps(pattern), *extra)
        out = self.ok("events", "put-targets", "--rule", name, "--targets", json.dumps(targets), *extra)
        self.assertEqual(out, {"FailedEntryCount": 0, "FailedEntries": []})

    def put(self, *entries):
        """PutEvents through the CLI; returns the answer's Entries."""
        out = self.ok("events", "put-events", "--entries", json.dumps(list(entries)))
        self.assertEqual(out["FailedEntryCount"], 0, out)
        return out["Entries"]

    def executions(self, pipeline):
        return self.ok("sagemaker", "list-pipeline-executions", "--pipeline-name", pipeline)[
            "PipelineExecutionSummaries"]

    def wait_executions(self, pipeline, n, timeout=30):
        deadline = time.time() + timeout
        while True:
            got = self.sm.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
            if len(got) >= n:
                return got
            if time.time() > deadline:
                self.fail("pipeline %s has %d execution(s) after %ss, wanted %d\n%s" % (
                    pipeline, len(got), timeout, n, self.log()))
            time.sleep(0.1)

    def params(self, arn):
        out = self.ok("sagemaker", "list-pipeline-parameters-for-execution", "--pipeline-execution-arn", arn)
        return {p["Name"]: p["Value"] for p in out["PipelineParameters"]}

    def wait(self, arn, statuses, timeout=30):
        deadline = time.time() + timeout
        while True:
            d = self.sm.describe_pipeline_execution(PipelineExecutionArn=arn)
            if d["PipelineExecutionStatus"] in statuses:
                return d
            if time.time() > deadline:
                self.fail("execution %s still %s after %ss (wanted %s)\n%s" % (
                    arn, d["PipelineExecutionStatus"], timeout, statuses, self.log()))
            time.sleep(0.1)

    def wait_metric(self, name, at_least, rule=None, bus="default", timeout=30):
        deadline = time.time() + timeout
        while True:
            v = metric(self.srv.url, name, bus=bus, rule=rule)
            if v >= at_least:
                return v
            if time.time() > deadline:
                self.fail("%s{bus=%s,rule=%s} is %s after %ss, wanted >= %s\n%s" % (
                    name, bus, rule, v, timeout, at_least, self.log()))
            time.sleep(0.05)

    def workdir(self, arn, step):
        return os.path.join(self.srv.data_dir, "executions", arn.rsplit("/", 1)[1], step)

    def db(self):
        """The server's database, read-only (WAL: readers never block the server)."""
        conn = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.srv.data_dir, "pipebridge.db"), uri=True,
                               timeout=10)
        conn.row_factory = sqlite3.Row
        return conn

    def wait_idle(self, timeout=30):
        """Until the event outbox is empty (every status-change event has been
        matched: its invocations are committed in the same transaction that
        removes it) and no invocation is pending (all were attempted for good)."""
        deadline = time.time() + timeout
        while True:
            with self.db() as conn:
                outbox = conn.execute("SELECT count(*) FROM event_outbox").fetchone()[0]
                pending = conn.execute("SELECT count(*) FROM invocations").fetchone()[0]
            if not outbox and not pending:
                return
            if time.time() > deadline:
                self.fail("%d event(s) in the outbox, %d invocation(s) pending after %ss\n%s" % (
                    outbox, pending, timeout, self.log()))
            time.sleep(0.05)

    def pb_dead_letters(self):
        """`pipebridge dead-letters list` (Pipebridge.ListDeadLetters)."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
        env.pop("AWS_ENDPOINT_URL", None)
        p = subprocess.run([PB, "dead-letters", "list", "--output", "json", "--endpoint-url", self.srv.url],
                           env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)["DeadLetters"]

    def dead_letters(self):
        with self.db() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM dead_letters ORDER BY id")]

    def wait_dead_letters(self, n, timeout=30):
        deadline = time.time() + timeout
        while True:
            got = self.dead_letters()
            if len(got) >= n:
                return got
            if time.time() > deadline:
                self.fail("%d dead letter(s) after %ss, wanted %d: %s\n%s" % (len(got), timeout, n, got, self.log()))
            time.sleep(0.1)


def sagemaker_target(tid, pipeline, params, **extra):
    t = {"Id": tid, "Arn": PIPELINE_ARN + pipeline, "RoleArn": ROLE,
         "SageMakerPipelineParameters": {"PipelineParameterList": [{"Name": k, "Value": v} for k, v in params]}}
    t.update(extra)
    return t


class Story(Base):
    def test_seed_story_with_the_aws_cli(self):
        """The issue's story: an upload event starts the pipeline with a
        static and a dynamic parameter; other events start nothing."""
        arn = self.create("train-model", SEED)
        self.assertEqual(arn, PIPELINE_ARN + "train-model")
        self.ok("events", "put-rule", "--name", "on-upload", "--event-pattern",
                '{"source":["my.app"],"detail-type":["Object Created"]}')
        target = sagemaker_target("pipe1", "train-model", [("InstanceType", "ml.m5.xlarge"),
                                                           ("InputKey", "$.detail.object.key")])
        self.assertEqual(self.ok("events", "put-targets", "--rule", "on-upload", "--targets", json.dumps([target])),
                         {"FailedEntryCount": 0, "FailedEntries": []})

        ids = self.put({"Source": "my.app", "DetailType": "Object Created",
                        "Detail": json.dumps({"object": {"key": "uploads/data-1.csv", "size": 12}})})
        self.assertEqual(len(ids), 1)
        self.assertRegex(ids[0]["EventId"], UUID)
        ex = self.wait_executions("train-model", 1)
        self.assertEqual(len(ex), 1)
        exec_arn = ex[0]["PipelineExecutionArn"]
        self.assertTrue(exec_arn.startswith(arn + "/execution/"), exec_arn)
        self.assertEqual(self.params(exec_arn), {"InstanceType": "ml.m5.xlarge", "InputKey": "uploads/data-1.csv"})
        self.assertEqual(self.wait(exec_arn, {"Succeeded", "Failed", "Stopped"})["PipelineExecutionStatus"],
                         "Succeeded")
        with open(os.path.join(self.workdir(exec_arn, "Fetch"), "key.txt")) as f:
            self.assertEqual(f.read(), "uploads/data-1.csv\n")
        self.assertEqual(metric(self.srv.url, "pipebridge_triggered_rules_total", rule="on-upload"), 1)
        self.wait_metric("pipebridge_invocations_total", 1, rule="on-upload")
        self.assertEqual(metric(self.srv.url, "pipebridge_failed_invocations_total", rule="on-upload"), 0)

        # events that do not match: accepted (counted as such), matched by nothing
        accepted = metric(self.srv.url, "pipebridge_putevents_entries_accepted_total")
        matched = metric(self.srv.url, "pipebridge_matched_events_total")
        self.put({"Source": "other.app", "DetailType": "Object Created", "Detail": '{"object":{"key":"x"}}'},
                 {"Source": "my.app", "DetailType": "Object Deleted", "Detail": '{"object":{"key":"y"}}'})
        self.wait_metric("pipebridge_putevents_entries_accepted_total", accepted + 2)
        self.assertEqual(metric(self.srv.url, "pipebridge_matched_events_total"), matched)
        self.assertEqual(metric(self.srv.url, "pipebridge_triggered_rules_total", rule="on-upload"), 1)
        # a matching event afterwards is a fence: once its execution exists, a
        # (wrong) invocation from the earlier events would have been committed before it
        self.put({"Source": "my.app", "DetailType": "Object Created", "Detail": '{"object":{"key":"second"}}'})
        self.wait_executions("train-model", 2)
        self.wait_idle()
        ex = self.executions("train-model")
        self.assertEqual(len(ex), 2, ex)
        self.assertEqual(self.params(ex[0]["PipelineExecutionArn"])["InputKey"], "second")
        self.assertEqual(metric(self.srv.url, "pipebridge_triggered_rules_total", rule="on-upload"), 2)
        with self.db() as conn:
            self.assertEqual(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0], 0)

    def test_chaining_on_status_change(self):
        """A's Succeeded status-change event (source aws.sagemaker) starts B
        with A's execution ARN read from the event."""
        a = self.create("stage-a", TRIVIAL)
        self.create("stage-b", CHAINED)
        pattern = {"source": ["aws.sagemaker"], "detail-type": [STATUS_CHANGE],
                   "detail": {"currentPipelineExecutionStatus": ["Succeeded"], "pipelineArn": [a]}}
        self.rule("a-done", pattern, [sagemaker_target("next", "stage-b",
                                                       [("Upstream", "$.detail.pipelineExecutionArn")])])
        a_exec = self.ok("sagemaker", "start-pipeline-execution", "--pipeline-name", "stage-a")[
            "PipelineExecutionArn"]
        self.assertEqual(self.wait(a_exec, {"Succeeded", "Failed"})["PipelineExecutionStatus"], "Succeeded")
        b = self.wait_executions("stage-b", 1)
        b_exec = b[0]["PipelineExecutionArn"]
        self.assertEqual(self.params(b_exec), {"Upstream": a_exec})
        self.assertEqual(self.wait(b_exec, {"Succeeded", "Failed"})["PipelineExecutionStatus"], "Succeeded")
        with open(os.path.join(self.workdir(b_exec, "Record"), "upstream.txt")) as f:
            self.assertEqual(f.read(), a_exec)
        # A's other status changes (Executing) and B's own events matched nothing:
        # once B's Succeeded event has been through the bus, B still ran once
        self.wait_idle()
        self.assertEqual(len(self.executions("stage-b")), 1)
        self.assertEqual(metric(self.srv.url, "pipebridge_triggered_rules_total", rule="a-done"), 1)
        self.assertEqual(metric(self.srv.url, "pipebridge_invocations_total", rule="a-done"), 1)
        # a second run of A starts a second B
        a2 = self.ok("sagemaker", "start-pipeline-execution", "--pipeline-name", "stage-a")["PipelineExecutionArn"]
        self.wait(a2, {"Succeeded"})
        b = self.wait_executions("stage-b", 2)
        self.assertEqual(self.params(b[0]["PipelineExecutionArn"]), {"Upstream": a2})


class Targets(Base):
    def test_dynamic_parameter_values(self):
        """docs/API.md: a path as a whole is read from the event, strings as
        they are, anything else as compact JSON; anything else is a literal."""
        names = ["Str", "Num", "Bool", "Nul", "Obj", "List", "First", "Id", "Literal", "Static"]
        self.create("kinds", definition([processing("Noop", ["/bin/true"])],
                                        params=[{"Name": n, "Type": "String", "DefaultValue": "-"} for n in names]))
        self.rule("kinds", {"source": ["my.app"]}, [sagemaker_target("t", "kinds", [
            ("Str", "$.detail.s"), ("Num", "$.detail.n"), ("Bool", "$.detail.b"), ("Nul", "$.detail.z"),
            ("Obj", "$.detail.o"), ("List", "$.detail.items[*].k"), ("First", "$.resources[0]"), ("Id", "$.id"),
            ("Literal", "prefix-$.detail.s"), ("Static", "$5")])])
        detail = {"s": "a b \"c\"", "n": 1.50, "b": True, "z": None, "o": {"x": [1, 2], "y": "z"},
                  "items": [{"k": "a"}, {"j": "b"}, {"k": "c"}]}
        eid = self.put({"Source": "my.app", "DetailType": "t", "Detail": json.dumps(detail),
                        "Resources": ["arn:aws:s3:::bkt/key", "second"]})[0]["EventId"]
        ex = self.wait_executions("kinds", 1)
        self.assertEqual(self.params(ex[0]["PipelineExecutionArn"]), {
            "Str": 'a b "c"', "Num": "1.5", "Bool": "true", "Nul": "null", "Obj": '{"x":[1,2],"y":"z"}',
            "List": '["a","c"]', "First": "arn:aws:s3:::bkt/key", "Id": eid, "Literal": "prefix-$.detail.s",
            "Static": "$5"})

    def test_values_the_pipeline_refuses(self):
        """A parameter the pipeline does not declare, or of the wrong type:
        INVALID_PARAMETER, not retried."""
        self.create("typed", definition([processing("Noop", ["/bin/true"])],
                                        params=[{"Name": "Count", "Type": "Integer", "DefaultValue": 1}]))
        self.rule("wrong-type", {"source": ["my.app"]}, [
            sagemaker_target("t", "typed", [("Count", "$.detail.count")], DeadLetterConfig={"Arn": DLQ})])
        self.rule("unknown-name", {"source": ["my.app"]}, [
            sagemaker_target("t", "typed", [("Nope", "1")], DeadLetterConfig={"Arn": DLQ})])
        self.put({"Source": "my.app", "DetailType": "t", "Detail": '{"count": "many"}'})
        dls = {d["rule_name"]: d for d in self.wait_dead_letters(2)}
        self.assertEqual(sorted(dls), ["unknown-name", "wrong-type"])
        for d in dls.values():
            self.assertEqual((d["error_code"], d["attempts"], d["exhausted"]), ("INVALID_PARAMETER", 1, None), d)
        self.assertIn("Unexpected type for parameter 'Count'", dls["wrong-type"]["error_message"])
        self.assertIn("Unknown parameter 'Nope'", dls["unknown-name"]["error_message"])
        self.assertEqual(self.executions("typed"), [])
        # a good value does start it
        self.ok("events", "remove-targets", "--rule", "unknown-name", "--ids", "t")
        self.put({"Source": "my.app", "DetailType": "t", "Detail": '{"count": 7}'})
        ex = self.wait_executions("typed", 1)
        self.assertEqual(self.params(ex[0]["PipelineExecutionArn"]), {"Count": "7"})

    def test_event_bus_target(self):
        """An event-bus target puts the same event (same id) on that bus."""
        self.create("per-event", PER_EVENT)
        self.ok("events", "create-event-bus", "--name", "orders")
        self.rule("forward", {"source": ["my.app"]},
                  [{"Id": "bus", "Arn": "arn:aws:events:us-east-1:000000000000:event-bus/orders", "RoleArn": ROLE}])
        self.rule("on-orders", {"source": ["my.app"]}, [sagemaker_target("t", "per-event", [("EventId", "$.id")])],
                  bus="orders")
        eid = self.put({"Source": "my.app", "DetailType": "t", "Detail": "{}"})[0]["EventId"]
        ex = self.wait_executions("per-event", 1)
        self.assertEqual(self.params(ex[0]["PipelineExecutionArn"]), {"EventId": eid})
        self.wait_idle()
        self.assertEqual(len(self.executions("per-event")), 1)
        self.assertEqual(metric(self.srv.url, "pipebridge_triggered_rules_total", bus="orders", rule="on-orders"), 1)


    def test_changed_targets_apply_to_the_next_event(self):
        """PutTargets and RemoveTargets take effect for the very next event,
        although the targets of a rule that matched before are cached."""
        self.create("per-event", PER_EVENT)
        self.create("other", PER_EVENT)
        self.rule("switch", {"source": ["my.app"]}, [sagemaker_target("a", "per-event", [("EventId", "$.id")])])
        self.put({"Source": "my.app", "DetailType": "t", "Detail": "{}"})
        self.wait_executions("per-event", 1)
        self.ok("events", "put-targets", "--rule", "switch", "--targets",
                json.dumps([sagemaker_target("a", "other", [("EventId", "$.id")])]))
        eid = self.put({"Source": "my.app", "DetailType": "t", "Detail": "{}"})[0]["EventId"]
        ex = self.wait_executions("other", 1)
        self.assertEqual(self.params(ex[0]["PipelineExecutionArn"]), {"EventId": eid})
        self.ok("events", "remove-targets", "--rule", "switch", "--ids", "a")
        self.put({"Source": "my.app", "DetailType": "t", "Detail": "{}"})
        self.wait_idle()
        self.assertEqual(len(self.executions("per-event")), 1)
        self.assertEqual(len(self.executions("other")), 1)


class PutEvents(Base):
    """AWS-SPEC §2.2: what the answer says, entry by entry."""

    def test_per_entry_errors_in_order(self):
        entries = [
            {"Source": "my.app", "DetailType": "t", "Detail": "{}"},
            {"DetailType": "t", "Detail": "{}"},
            {"Source": "my.app", "Detail": "{}"},
            {"Source": "my.app", "DetailType": "t"},
            {"Source": "my.app", "DetailType": "t", "Detail": "[1, 2]"},
            {"Source": "my.app", "DetailType": "t", "Detail": '"a string"'},
            {"Source": "my.app", "DetailType": "t", "Detail": "{not json"},
            {"Source": "aws.s3", "DetailType": "t", "Detail": "{}"},
            {"Source": "my.app", "DetailType": "t", "Detail": '{"a": 1}', "EventBusName": "no-such-bus"},
            {"Source": "my.app", "DetailType": "t", "Detail": '{"b": [true, null]}', "Resources": ["r1", "r2"]},
        ]
        out = self.events.put_events(Entries=entries)
        got = out["Entries"]
        self.assertEqual(len(got), 10)
        self.assertEqual(out["FailedEntryCount"], 7)
        missing = "Parameter %s is not valid. Reason: %s is a required argument."
        self.assertEqual(got[1], {"ErrorCode": "InvalidArgument", "ErrorMessage": missing % ("Source", "Source")})
        self.assertEqual(got[2], {"ErrorCode": "InvalidArgument",
                                  "ErrorMessage": missing % ("DetailType", "DetailType")})
        self.assertEqual(got[3], {"ErrorCode": "InvalidArgument", "ErrorMessage": missing % ("Detail", "Detail")})
        for i in (4, 5, 6):
            self.assertEqual(got[i], {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}, i)
        self.assertEqual(got[7]["ErrorCode"], "NotAuthorizedForSourceException")
        self.assertTrue(got[7].get("ErrorMessage"), got[7])
        self.assertNotIn("EventId", got[7])
        ids = [got[i]["EventId"] for i in (0, 8, 9)]
        for i in (0, 8, 9):
            self.assertEqual(set(got[i]), {"EventId"}, got[i])
        for eid in ids:
            self.assertRegex(eid, UUID)
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual(metric(self.srv.url, "pipebridge_putevents_entries_accepted_total"), 2)
        self.assertEqual(metric(self.srv.url, "pipebridge_putevents_entries_failed_total"), 7)

        # the CLI sees the same answer (exit code 0: entries failing is not a request failure)
        rc, out, err = self.srv.aws("events", "put-events", "--entries", json.dumps(entries[:4]))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["FailedEntryCount"], 3)
        self.assertEqual([set(e) for e in out["Entries"]], [{"EventId"}] + [{"ErrorCode", "ErrorMessage"}] * 3)

        # an unknown bus alone: accepted, nothing failed
        out = self.events.put_events(Entries=[{"Source": "my.app", "DetailType": "t", "Detail": "{}",
                                               "EventBusName": "ghost-bus"}])
        self.assertEqual(out["FailedEntryCount"], 0)
        self.assertRegex(out["Entries"][0]["EventId"], UUID)
        # a bus ARN that does not exist either
        out = self.events.put_events(Entries=[{
            "Source": "my.app", "DetailType": "t", "Detail": "{}",
            "EventBusName": "arn:aws:events:us-east-1:000000000000:event-bus/ghost-bus"}])
        self.assertEqual(out["FailedEntryCount"], 0)
        self.assertRegex(out["Entries"][0]["EventId"], UUID)

    def test_entry_count_limit(self):
        one = {"Source": "my.app", "DetailType": "t", "Detail": "{}"}
        # the CLI does not check the maximum itself: the server answers
        err = self.fails("ValidationException", "events", "put-events", "--entries", json.dumps([one] * 11))
        self.assertIn("1 validation error detected: ", err)
        self.assertIn("at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10",
                      err)
        status, body = raw_events(self.srv.url, "PutEvents", {"Entries": [one] * 11})
        self.assertEqual((status, body.get("__type")), (400, "ValidationException"), body)
        self.assertIn("Member must have length less than or equal to 10", body.get("message", body.get("Message")))
        status, body = raw_events(self.srv.url, "PutEvents", {"Entries": [one] * 10})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["FailedEntryCount"], 0)
        self.assertEqual(len(body["Entries"]), 10)
        # nothing of the refused requests was accepted
        self.assertEqual(metric(self.srv.url, "pipebridge_putevents_entries_accepted_total"), 10)

    def test_total_size_limit(self):
        limit = 262144  # the sum must stay below 256 KiB

        def detail_of(size):
            return '{"a":"%s"}' % ("x" * (size - 8))

        def entry(total):  # Source (1) + DetailType (1) + Detail
            return {"Source": "s", "DetailType": "d", "Detail": detail_of(total - 2)}

        over = "Total size of the entries in the request is over the limit."
        out = self.events.put_events(Entries=[entry(limit - 1)])
        self.assertEqual(out["FailedEntryCount"], 0)
        with self.assertRaises(ClientError) as cm:
            self.events.put_events(Entries=[entry(limit)])
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")
        self.assertEqual(cm.exception.response["Error"]["Message"], over)
        # summed over the entries, with 14 bytes for a Time and each Resources item
        half = limit // 2
        with self.assertRaises(ClientError) as cm:
            self.events.put_events(Entries=[entry(half), entry(half)])
        self.assertEqual(cm.exception.response["Error"]["Message"], over)
        out = self.events.put_events(Entries=[entry(half), entry(half - 1)])
        self.assertEqual(out["FailedEntryCount"], 0)
        timed = dict(entry(limit - 14), Time=1700000000)
        with self.assertRaises(ClientError) as cm:
            self.events.put_events(Entries=[timed])
        self.assertEqual(cm.exception.response["Error"]["Message"], over)
        with self.assertRaises(ClientError) as cm:
            self.events.put_events(Entries=[dict(entry(limit - 4), Resources=["abcd"])])
        self.assertEqual(cm.exception.response["Error"]["Message"], over)
        out = self.events.put_events(Entries=[dict(entry(limit - 5), Resources=["abcd"])])
        self.assertEqual(out["FailedEntryCount"], 0)
        # bytes of UTF-8, not characters: 131071 two-byte characters are 262142 bytes
        wide = {"Source": "s", "DetailType": "d", "Detail": '{"a":"%s"}' % ("\u00e9" * 131068)}
        with self.assertRaises(ClientError) as cm:
            self.events.put_events(Entries=[wide])  # 2 + 8 + 262136 = 262146
        self.assertEqual(cm.exception.response["Error"]["Message"], over)
        # the CLI sees the same error (the entries from a file: too long for a command line)
        path = os.path.join(self.srv.data_dir, "entries.json")
        with open(path, "w") as f:
            json.dump([entry(limit)], f)
        err = self.fails("ValidationException", "events", "put-events", "--entries", "file://" + path)
        self.assertIn(over, err)
        # even entries that fail on their own count towards the size
        with self.assertRaises(ClientError) as cm:
            self.events.put_events(Entries=[{"DetailType": "d", "Detail": detail_of(limit)}])
        self.assertEqual(cm.exception.response["Error"]["Message"], over)
        self.assertEqual(metric(self.srv.url, "pipebridge_putevents_entries_accepted_total"), 4)

    def test_event_envelope(self):
        """The event a target receives (§3.1), seen in a dead letter: a target
        naming a pipeline that does not exist, with no retries, keeps it."""
        self.rule("env", {"source": ["my.app"]}, [sagemaker_target(
            "t", "noop", [], RetryPolicy={"MaximumRetryAttempts": 0}, DeadLetterConfig={"Arn": DLQ})])
        out = self.events.put_events(Entries=[{
            "Source": "my.app", "DetailType": "Thing Happened", "Detail": '{"n": 1, "s": "\u00e9"}',
            "Resources": ["arn:aws:s3:::bkt"], "Time": 1700000000}])
        eid = out["Entries"][0]["EventId"]
        dl = self.wait_dead_letters(1)[0]
        self.assertEqual((dl["error_code"], dl["attempts"], dl["exhausted"]),
                         ("NO_RESOURCE", 1, "MaximumRetryAttempts"))
        self.assertEqual(dl["event_id"], eid)
        ev = json.loads(dl["event_json"])
        self.assertEqual(list(ev), ENVELOPE_KEYS)
        self.assertEqual(ev, {"version": "0", "id": eid, "detail-type": "Thing Happened", "source": "my.app",
                              "account": ACCOUNT, "time": "2023-11-14T22:13:20Z", "region": "us-east-1",
                              "resources": ["arn:aws:s3:::bkt"], "detail": {"n": 1, "s": "\u00e9"}})


class Failures(Base):
    """Invocations that fail: dead letters (read from the store), metrics."""

    def test_dynamic_path_that_finds_nothing(self):
        self.create("train-model", SEED)
        self.rule("bad-path", {"source": ["my.app"]}, [
            sagemaker_target("with-dlq", "train-model", [("InputKey", "$.detail.missing")],
                             DeadLetterConfig={"Arn": DLQ})])
        self.rule("bad-path-no-dlq", {"source": ["my.app"]}, [
            sagemaker_target("without", "train-model", [("InputKey", "$.detail.missing")])])
        eid = self.put({"Source": "my.app", "DetailType": "Object Created", "Detail": '{"present": 1}'})[0]["EventId"]
        dls = self.wait_dead_letters(1)
        self.wait_metric("pipebridge_failed_invocations_total", 1, rule="bad-path-no-dlq")
        self.wait_metric("pipebridge_dead_letter_invocations_total", 1, rule="bad-path")
        self.assertEqual(len(dls), 1, dls)  # the target without a DeadLetterConfig keeps nothing
        dl = dls[0]
        self.assertEqual(dl["error_code"], "INVALID_PARAMETER")
        self.assertEqual(dl["error_message"], "Pipeline parameter InputKey: the path $.detail.missing found nothing "
                                              "in the event")
        self.assertEqual(dl["attempts"], 1)  # not retried
        self.assertIsNone(dl["exhausted"])
        self.assertEqual((dl["dlq_arn"], dl["bus"], dl["rule_name"], dl["target_id"], dl["target_arn"]),
                         (DLQ, "default", "bad-path", "with-dlq", PIPELINE_ARN + "train-model"))
        self.assertEqual(dl["rule_arn"], "arn:aws:events:us-east-1:000000000000:rule/bad-path")
        self.assertEqual(dl["event_id"], eid)
        self.assertEqual(json.loads(dl["event_json"])["detail"], {"present": 1})
        self.assertEqual(json.loads(dl["target_json"])["Id"], "with-dlq")
        url = self.srv.url
        self.assertEqual(metric(url, "pipebridge_invocation_attempts_total", rule="bad-path"), 1)
        self.assertEqual(metric(url, "pipebridge_retry_invocation_attempts_total", rule="bad-path"), 0)
        self.assertEqual(metric(url, "pipebridge_failed_invocations_total", rule="bad-path"), 0)
        self.assertEqual(metric(url, "pipebridge_dead_letter_invocations_total", rule="bad-path-no-dlq"), 0)
        self.assertEqual(self.executions("train-model"), [])
        with self.db() as conn:
            self.assertEqual(conn.execute("SELECT count(*) FROM invocations").fetchone()[0], 0)
        self.assertTrue(any("failed for good" in line and "INVALID_PARAMETER" in line for line in self.srv.log),
                        self.log())

    def test_missing_pipeline_is_retried_then_dead(self):
        self.rule("to-ghost", {"source": ["my.app"]}, [
            sagemaker_target("ghost", "does-not-exist", [("InputKey", "$.detail.key")],
                             RetryPolicy={"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 60},
                             DeadLetterConfig={"Arn": DLQ})])
        t0 = time.time()
        eid = self.put({"Source": "my.app", "DetailType": "x", "Detail": '{"key": "k"}'})[0]["EventId"]
        dl = self.wait_dead_letters(1)[0]
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(dl["error_code"], "NO_RESOURCE")
        self.assertIn("does-not-exist", dl["error_message"])
        self.assertEqual(dl["attempts"], 2)  # the first attempt and one retry
        self.assertEqual(dl["exhausted"], "MaximumRetryAttempts")
        self.assertEqual(dl["event_id"], eid)
        self.assertEqual(dl["target_arn"], PIPELINE_ARN + "does-not-exist")
        url = self.srv.url
        self.wait_metric("pipebridge_dead_letter_invocations_total", 1, rule="to-ghost")
        self.assertEqual(metric(url, "pipebridge_invocation_attempts_total", rule="to-ghost"), 2)
        self.assertEqual(metric(url, "pipebridge_retry_invocation_attempts_total", rule="to-ghost"), 1)
        self.assertEqual(metric(url, "pipebridge_invocations_total", rule="to-ghost"), 1)
        self.assertEqual(metric(url, "pipebridge_failed_invocations_total", rule="to-ghost"), 0)
        with self.db() as conn:
            self.assertEqual(conn.execute("SELECT count(*) FROM invocations").fetchone()[0], 0)
        # the same through the API, with §8's attribute names (RetryAttempts: attempts made, the
        # first included, as docs/API.md decides)
        [got] = self.pb_dead_letters()
        self.assertEqual((got["ErrorCode"], got["RetryAttempts"], got["ExhaustedRetryCondition"], got["EventId"],
                          got["RuleArn"], got["TargetArn"], got["DeadLetterArn"]),
                         ("NO_RESOURCE", 2, "MaximumRetryAttempts", eid,
                          "arn:aws:events:us-east-1:000000000000:rule/to-ghost", PIPELINE_ARN + "does-not-exist", DLQ))

    def test_missing_pipeline_created_before_the_retry(self):
        """NO_RESOURCE is retried: a pipeline created meanwhile is started."""
        self.rule("early", {"source": ["my.app"]}, [
            sagemaker_target("late", "late-pipe", [("InputKey", "$.detail.key")],
                             RetryPolicy={"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 60},
                             DeadLetterConfig={"Arn": DLQ})])
        self.put({"Source": "my.app", "DetailType": "x", "Detail": '{"key": "k1"}'})
        self.wait_metric("pipebridge_invocation_attempts_total", 1, rule="early")
        self.create("late-pipe", SEED)
        ex = self.wait_executions("late-pipe", 1, timeout=60)
        self.assertEqual(self.params(ex[0]["PipelineExecutionArn"])["InputKey"], "k1")
        self.assertGreaterEqual(metric(self.srv.url, "pipebridge_retry_invocation_attempts_total", rule="early"), 1)
        self.assertEqual(self.dead_letters(), [])


class Crash(Base):
    def setUp(self):
        self.data_dir = tempfile.mkdtemp(prefix="pb-e2e-")
        self.srv = start(Server(data_dir=self.data_dir))
        self.sm = self.srv.boto("sagemaker")
        self.events = self.srv.boto("events")

    def tearDown(self):
        self.srv.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def test_kill_9_during_a_putevents_load(self):
        """Every acknowledged event causes exactly one execution, even across
        a kill -9 in the middle of ingest and dispatch; none causes two."""
        self.create("per-event", PER_EVENT)
        self.rule("load", {"source": ["load.test"]}, [sagemaker_target("t", "per-event", [("EventId", "$.id")])])
        acked, lock, stop = set(), threading.Lock(), threading.Event()
        errors = []
        url = self.srv.url

        def load(n):
            client = self.srv.boto("events")
            for i in range(50):  # at most 500 events per thread (the kill comes well before)
                if stop.is_set():
                    return
                entries = [{"Source": "load.test", "DetailType": "tick",
                            "Detail": json.dumps({"thread": n, "request": i, "entry": k})} for k in range(10)]
                try:
                    out = client.put_events(Entries=entries)
                except (BotoCoreError, ClientError, OSError):
                    return  # the server is gone: what was not answered was not acknowledged
                with lock:
                    for e in out["Entries"]:
                        if "EventId" in e:
                            acked.add(e["EventId"])
                        else:
                            errors.append(e)

        threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        # kill once ingest and dispatch are both busy
        deadline = time.time() + 60
        while time.time() < deadline:
            with lock:
                n = len(acked)
            if n >= 200 and metric(url, "pipebridge_invocations_total", rule="load") >= 5:
                break
            if not any(t.is_alive() for t in threads):
                break
            time.sleep(0.02)
        self.assertTrue(any(t.is_alive() for t in threads), "the load ended before the kill; make it longer")
        self.srv.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(acked), 200)

        start(self.srv)
        # and again while the backlog is being delivered: invocations whose
        # execution has started may still be pending (their rows are deleted
        # in batches), so the restart delivers them again
        self.wait_metric("pipebridge_invocations_total", 20, rule="load", timeout=60)
        self.srv.stop(signal.SIGKILL)
        start(self.srv)
        self.sm = self.srv.boto("sagemaker")

        def state():
            with self.db() as conn:
                pending = conn.execute("SELECT count(*) FROM invocations").fetchone()[0]
                running = conn.execute("SELECT count(*) FROM executions WHERE status IN "
                                       "('Queued', 'Executing', 'Stopping')").fetchone()[0]
                outbox = conn.execute("SELECT count(*) FROM event_outbox").fetchone()[0]
                rows = conn.execute("SELECT e.arn, p.value FROM executions e JOIN exec_params p "
                                    "ON p.exec_seq = e.seq AND p.name = 'EventId'").fetchall()
            return pending, running, outbox, [(r[0], r[1]) for r in rows]

        deadline = time.time() + 90
        while True:
            pending, running, outbox, rows = state()
            seen = {v for _, v in rows}
            if not pending and not running and not outbox and acked <= seen:
                time.sleep(1)  # settled: nothing due, nothing running; check once more after a while
                if state()[3] == rows:
                    break
            if time.time() > deadline:
                self.fail("not settled after 90 s: %d invocation(s) pending, %d execution(s) running, %d in the "
                          "outbox, %d of %d acknowledged event(s) without an execution\n%s" % (
                              pending, running, outbox, len(acked - seen), len(acked), self.log()))
            time.sleep(0.2)

        by_event = {}
        for arn, eid in rows:
            by_event.setdefault(eid, []).append(arn)
        twice = {e: a for e, a in by_event.items() if len(a) > 1}
        self.assertEqual(twice, {}, "events that started more than one execution")
        self.assertEqual(acked - set(by_event), set(), "acknowledged events without an execution")
        self.assertNotIn("none", by_event)  # every execution came from an event
        # what was committed but not answered at the kill may have run too, at most once
        self.assertLessEqual(len(by_event) - len(acked), 30)
        # the API agrees with the store
        listed = []
        for page in self.sm.get_paginator("list_pipeline_executions").paginate(
                PipelineName="per-event", PaginationConfig={"PageSize": 100}):
            listed += [e["PipelineExecutionArn"] for e in page["PipelineExecutionSummaries"]]
        self.assertEqual(sorted(listed), sorted(a for a, _ in rows))
        for arn, eid in rows[:5] + rows[-5:]:
            got = self.sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
            self.assertEqual(got, [{"Name": "EventId", "Value": eid}])
        # and the bus still works
        eid = self.srv.boto("events").put_events(Entries=[
            {"Source": "load.test", "DetailType": "tick", "Detail": "{}"}])["Entries"][0]["EventId"]
        deadline = time.time() + 30
        while eid not in {v for _, v in state()[3]}:
            if time.time() > deadline:
                self.fail("no execution for an event put after the restart\n" + self.log())
            time.sleep(0.1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
