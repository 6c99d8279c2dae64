"""End to end: dead letters (AWS-SPEC §8 attributes) listed and redriven
through `pipebridge dead-letters list|redrive` and the Pipebridge.* actions
behind them, against a real pipebridge server. Rules and targets are made
with the real AWS CLI v2; a target to a pipeline that does not exist, with no
retries and a DeadLetterConfig, leaves a dead letter; once the pipeline
exists, a redrive starts its execution."""
import json
import os
import subprocess
import time
import unittest


from harness import PB, Server, ServerTest, drain, raw

ACCOUNT = "000000000000"
PIPELINE_ARN = "arn:aws:sagemaker:us-east-1:%s:pipeline/" % ACCOUNT
RULE_ARN = "arn:aws:events:us-east-1:%s:rule/" % ACCOUNT
ROLE = "arn:aws:iam::000000000000:role/r"
DLQ = "arn:aws:sqs:us-east-1:000000000000:dlq"
DLQ2 = "arn:aws:sqs:us-east-1:000000000000:other-dlq"

# One Processing step running /bin/true.
TRUE_PIPELINE = json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": [{
    "Name": "Nothing", "Type": "Processing", "Arguments": {
        "AppSpecification": {"ImageUri": "local", "ContainerEntrypoint": ["/bin/true"]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 1}},
        "RoleArn": ROLE}}]})


def target(tid, pipeline, dlq=DLQ):
    return {"Id": tid, "Arn": PIPELINE_ARN + pipeline, "RoleArn": ROLE,
            "RetryPolicy": {"MaximumRetryAttempts": 0}, "DeadLetterConfig": {"Arn": dlq}}


class DeadLetters(ServerTest):
    def setUp(self):
        self.srv = drain(Server().start())

    # ------------------------------------------------------------ helpers --

    def pb(self, *args, env=None, endpoint=True):
        """Runs `pipebridge dead-letters ...`: (exit code, stdout, stderr)."""
        e = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
        e.pop("AWS_ENDPOINT_URL", None)
        e.update(env or {})
        e = {k: v for k, v in e.items() if v is not None}
        argv = [PB, "dead-letters"] + list(args) + (["--endpoint-url", self.srv.url] if endpoint else [])
        p = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def pb_json(self, *args):
        rc, out, err = self.pb(*args, "--output", "json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def put_rule(self, name, targets):
        self.ok("events", "put-rule", "--name", name, "--event-pattern", '{"source":["test.dlq"]}')
        out = self.ok("events", "put-targets", "--rule", name, "--targets", json.dumps(targets))
        self.assertEqual(out["FailedEntryCount"], 0, out)

    def put_events(self, n=1):
        entries = [{"Source": "test.dlq", "DetailType": "Test", "Detail": json.dumps({"n": i})} for i in range(n)]
        out = self.ok("events", "put-events", "--entries", json.dumps(entries))
        self.assertEqual(out["FailedEntryCount"], 0, out)
        return [e["EventId"] for e in out["Entries"]]

    def wait_dead_letters(self, count, *filters, timeout=30):
        deadline = time.time() + timeout
        while True:
            dls = self.pb_json("list", *filters)["DeadLetters"]
            if len(dls) >= count or time.time() > deadline:
                self.assertEqual(len(dls), count, dls)
                return dls
            time.sleep(0.2)

    def list_all(self, body):
        """Every page of ListDeadLetters: (records, number of pages)."""
        body = dict(body)
        recs, pages = [], 0
        while True:
            st, out = raw(self.srv.url, "ListDeadLetters", body)
            self.assertEqual(st, 200, out)
            pages += 1
            recs += out["DeadLetters"]
            if "NextToken" not in out:
                return recs, pages
            body["NextToken"] = out["NextToken"]

    # -------------------------------------------------------------- tests --

    def test_dead_letter_then_redrive_starts_the_pipeline(self):
        self.put_rule("train", [target("t1", "late")])
        [event_id] = self.put_events()
        [dl] = self.wait_dead_letters(1)
        self.assertEqual(dl["ErrorCode"], "NO_RESOURCE")
        self.assertIn("does not exist", dl["ErrorMessage"])
        self.assertEqual(dl["RetryAttempts"], 1)
        self.assertEqual(dl["ExhaustedRetryCondition"], "MaximumRetryAttempts")
        self.assertEqual(dl["RuleArn"], RULE_ARN + "train")
        self.assertEqual(dl["RuleName"], "train")
        self.assertEqual(dl["TargetId"], "t1")
        self.assertEqual(dl["TargetArn"], PIPELINE_ARN + "late")
        self.assertEqual(dl["DeadLetterArn"], DLQ)
        self.assertEqual(dl["Bus"], "default")
        self.assertEqual(dl["EventId"], event_id)
        event = json.loads(dl["Event"])
        self.assertEqual((event["id"], event["source"], event["detail"]), (event_id, "test.dlq", {"n": 0}))
        self.assertIsInstance(dl["Id"], int)
        self.assertLessEqual(dl["IngestionTime"], dl["CreationTime"])
        self.assertLess(abs(dl["CreationTime"] - time.time()), 120)

        # text: one line, tab-separated: id, time, rule, target, error code, message
        rc, out, err = self.pb("list", "--output", "text")
        self.assertEqual(rc, 0, err)
        fields = out.rstrip("\n").split("\t")
        self.assertEqual(len(out.splitlines()), 1, out)
        self.assertEqual(fields[0], str(dl["Id"]))
        self.assertRegex(fields[1], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(fields[2:5], [RULE_ARN + "train", PIPELINE_ARN + "late", "NO_RESOURCE"])
        self.assertEqual(fields[5], dl["ErrorMessage"])

        # filters
        self.assertEqual(len(self.pb_json("list", "--target-arn", PIPELINE_ARN + "late")["DeadLetters"]), 1)
        self.assertEqual(self.pb_json("list", "--target-arn", PIPELINE_ARN + "other")["DeadLetters"], [])
        self.assertEqual(len(self.pb_json("list", "--dead-letter-arn", DLQ)["DeadLetters"]), 1)
        self.assertEqual(self.pb_json("list", "--dead-letter-arn", DLQ2)["DeadLetters"], [])

        # the pipeline appears; the redrive starts it
        self.ok("sagemaker", "create-pipeline", "--pipeline-name", "late", "--role-arn", ROLE,
                 "--pipeline-definition", TRUE_PIPELINE)
        self.assertEqual(self.ok("sagemaker", "list-pipeline-executions",
                                  "--pipeline-name", "late")["PipelineExecutionSummaries"], [])
        self.assertEqual(self.pb_json("redrive", "--all"), {"Redriven": 1})
        deadline = time.time() + 30
        while True:
            execs = self.ok("sagemaker", "list-pipeline-executions", "--pipeline-name", "late")
            if execs["PipelineExecutionSummaries"] or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(len(execs["PipelineExecutionSummaries"]), 1, execs)
        self.assertEqual(self.pb_json("list")["DeadLetters"], [])
        # nothing is left to redrive
        self.assertEqual(self.pb_json("redrive", "--all"), {"Redriven": 0})

    def test_paging_filters_and_redrive_by_id(self):
        self.put_rule("both", [target("a", "missing-a", DLQ), target("b", "missing-b", DLQ2)])
        events = self.put_events(3)
        dls = self.wait_dead_letters(6)
        ids = [d["Id"] for d in dls]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(sorted(d["EventId"] for d in dls), sorted(events * 2))

        # pages of 2: all six once, in order
        recs, pages = self.list_all({"Limit": 2})
        self.assertEqual([r["Id"] for r in recs], ids)
        self.assertEqual(pages, 3)
        # TargetArn is filtered by the handler: paging still sees each once
        recs, _ = self.list_all({"Limit": 2, "TargetArn": PIPELINE_ARN + "missing-a"})
        self.assertEqual([r["Id"] for r in recs], [d["Id"] for d in dls if d["TargetId"] == "a"])
        recs, _ = self.list_all({"Limit": 1, "DeadLetterArn": DLQ2})
        self.assertEqual([r["Id"] for r in recs], [d["Id"] for d in dls if d["TargetId"] == "b"])
        recs, _ = self.list_all({"DeadLetterArn": DLQ2, "TargetArn": PIPELINE_ARN + "missing-a"})
        self.assertEqual(recs, [])

        # by id: the pipelines still do not exist, so each comes back as a new dead letter
        a_ids = [d["Id"] for d in dls if d["TargetId"] == "a"]
        self.assertEqual(self.pb_json("redrive", "--id", str(a_ids[0]), str(a_ids[1])), {"Redriven": 2})
        again = self.wait_dead_letters(6)
        self.assertNotIn(a_ids[0], [d["Id"] for d in again])
        self.assertNotIn(a_ids[1], [d["Id"] for d in again])
        self.assertGreater(min(d["Id"] for d in again[-2:]), max(ids))
        self.assertEqual(sorted(d["EventId"] for d in again), sorted(events * 2))
        # an id that is gone (or never was) redrives nothing
        self.assertEqual(self.pb_json("redrive", "--id", str(a_ids[0]), "--id", "999999"), {"Redriven": 0})
        # by target: the three of b, once (their new dead letters are not redriven again)
        rc, out, err = self.pb("redrive", "--target-arn", PIPELINE_ARN + "missing-b", "--output", "text")
        self.assertEqual((rc, out), (0, "3\n"), err)
        self.wait_dead_letters(3, "--target-arn", PIPELINE_ARN + "missing-b")
        # by dead-letter ARN
        self.assertEqual(self.pb_json("redrive", "--dead-letter-arn", DLQ), {"Redriven": 3})
        self.wait_dead_letters(6)

    def test_filtered_listing_is_bounded_and_complete(self):
        """A TargetArn that matches one dead letter behind more than 1,000 others:
        the first call stops after examining 1,000 (an empty page with a
        NextToken), the next finds it; a redrive by that target finds it too."""
        self.put_rule("many", [target("t%d" % i, "many-%d" % i) for i in range(5)])
        ev = self.srv.boto("events")
        entries = [{"Source": "test.dlq", "DetailType": "Test", "Detail": "{}"}] * 10
        for _ in range(21):  # 21 x 10 events x 5 targets = 1,050 dead letters
            self.assertEqual(ev.put_events(Entries=entries)["FailedEntryCount"], 0)
        self.wait_dead_letters(1050, timeout=120)
        self.ok("events", "put-rule", "--name", "rare", "--event-pattern", '{"source":["test.rare"]}')
        self.ok("events", "put-targets", "--rule", "rare", "--targets", json.dumps([target("r", "rare")]))
        self.ok("events", "put-events", "--entries", json.dumps(
            [{"Source": "test.rare", "DetailType": "Test", "Detail": "{}"}]))
        self.wait_dead_letters(1, "--target-arn", PIPELINE_ARN + "rare")

        st, first = raw(self.srv.url, "ListDeadLetters", {"TargetArn": PIPELINE_ARN + "rare"})
        self.assertEqual(st, 200, first)
        self.assertEqual(first["DeadLetters"], [])
        self.assertIn("NextToken", first)
        recs, pages = self.list_all({"TargetArn": PIPELINE_ARN + "rare"})
        self.assertEqual([r["TargetId"] for r in recs], ["r"])
        self.assertEqual(pages, 2)
        self.assertEqual(self.pb_json("redrive", "--target-arn", PIPELINE_ARN + "rare"), {"Redriven": 1})

    def test_api_errors(self):
        url = self.srv.url

        def validation(op, body, text):
            st, out = raw(url, op, body)
            self.assertEqual(st, 400, out)
            self.assertEqual(out["__type"], "ValidationException", out)
            self.assertIn(text, out["message"])
            self.assertNotIn("Message", out)  # answered as EventBridge answers

        validation("ListDeadLetters", {"Limit": 0}, "1 validation error detected: Value '0' at 'limit' failed to "
                   "satisfy constraint: Member must have value greater than or equal to 1")
        validation("ListDeadLetters", {"Limit": 101}, "Value '101' at 'limit' failed to satisfy constraint: "
                   "Member must have value less than or equal to 100")
        validation("ListDeadLetters", {"NextToken": "nope"}, "The NextToken provided is invalid.")
        validation("RedriveDeadLetters", {}, "set All to true to redrive every dead letter")
        validation("RedriveDeadLetters", {"All": False}, "set All to true")
        validation("RedriveDeadLetters", {"Ids": []}, "Member must have length greater than or equal to 1")
        validation("RedriveDeadLetters", {"Ids": list(range(1, 102))},
                   "Member must have length less than or equal to 100")
        validation("RedriveDeadLetters", {"Ids": [0]}, "Value '0' at 'ids.1.member' failed to satisfy "
                   "constraint: Member must have value greater than or equal to 1")
        validation("RedriveDeadLetters", {"Ids": [1], "All": True}, "Ids cannot be combined")
        st, out = raw(url, "RedriveDeadLetters", {"Ids": ["one"]})
        self.assertEqual((st, out["__type"]), (400, "SerializationException"), out)
        st, out = raw(url, "RedriveDeadLetters", {"All": "yes"})
        self.assertEqual((st, out["__type"]), (400, "SerializationException"), out)
        st, out = raw(url, "Nope", {})
        self.assertEqual((st, out["__type"]), (400, "UnknownOperationException"), out)
        # signed for another service
        st, out = raw(url, "ListDeadLetters", {}, service="events")
        self.assertEqual((st, out["__type"]), (400, "InvalidSignatureException"), out)
        # well-formed answers
        self.assertEqual(raw(url, "ListDeadLetters", {}), (200, {"DeadLetters": []}))
        self.assertEqual(raw(url, "RedriveDeadLetters", {"All": True}), (200, {"Redriven": 0}))
        self.assertEqual(raw(url, "RedriveDeadLetters", {"Ids": [5]}), (200, {"Redriven": 0}))

    def test_cli_errors_and_credentials(self):
        # no selector, or --id with a filter: refused before any request
        rc, out, err = self.pb("redrive")
        self.assertEqual(rc, 252, err)
        self.assertIn("--all", err)
        rc, _, err = self.pb("redrive", "--id", "1", "--all")
        self.assertEqual(rc, 252, err)
        rc, _, err = self.pb("redrive", "--id", "x")
        self.assertEqual(rc, 252, err)
        rc, _, err = self.pb("list", "--output", "yaml")
        self.assertEqual(rc, 252, err)
        rc, _, err = self.pb("frobnicate")
        self.assertEqual(rc, 252, err)
        # the server's error, as the AWS CLI prints it
        rc, _, err = self.pb("list", env={"AWS_ACCESS_KEY_ID": "nobody", "AWS_SECRET_ACCESS_KEY": "x"})
        self.assertEqual(rc, 254, err)
        self.assertIn("An error occurred (UnrecognizedClientException) when calling the ListDeadLetters "
                      "operation: ", err)
        rc, _, err = self.pb("redrive", "--all", env={"AWS_SECRET_ACCESS_KEY": "wrong"})
        self.assertEqual(rc, 254, err)
        self.assertIn("An error occurred (InvalidSignatureException) when calling the RedriveDeadLetters "
                      "operation: ", err)
        # only one of the two variables: refused, as the AWS CLI does
        rc, _, err = self.pb("list", env={"AWS_SECRET_ACCESS_KEY": None})
        self.assertEqual(rc, 255, err)
        self.assertIn("Partial credentials", err)
        # neither: the development credential test / test
        rc, out, err = self.pb("list", env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
        self.assertEqual((rc, json.loads(out)), (0, {"DeadLetters": []}), err)
        # AWS_ENDPOINT_URL stands for --endpoint-url
        rc, out, err = self.pb("list", env={"AWS_ENDPOINT_URL": self.srv.url}, endpoint=False)
        self.assertEqual((rc, json.loads(out)), (0, {"DeadLetters": []}), err)
        # nobody listening: 255 and a clear message
        rc, _, err = self.pb("list", "--endpoint-url", "http://127.0.0.1:1", endpoint=False)
        self.assertEqual(rc, 255, err)
        self.assertIn('Could not connect to the endpoint URL: "http://127.0.0.1:1"', err)
        # --help
        rc, out, _ = self.pb("--help", endpoint=False)
        self.assertEqual(rc, 0)
        self.assertIn("development credential", out)
        self.assertIn("redrive", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
