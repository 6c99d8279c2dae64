"""End to end: the SageMaker Pipelines API (AWS-SPEC §6) through the real AWS
CLI v2 and boto3 against a real pipebridge server: pipelines (create,
describe, list, update, delete, tags) and executions run by the local runner
(steps as /bin/sh processes in <data_dir>/executions/<id>/<step>/)."""
import json
import os
import shutil
import signal
import tempfile
import time
import unittest

from botocore.exceptions import ClientError

import harness
from harness import Server, ServerTest, start

ACCOUNT = "000000000000"
ARN_PREFIX = "arn:aws:sagemaker:us-east-1:%s:pipeline/" % ACCOUNT
ROLE = "arn:aws:iam::000000000000:role/pipelines"
CONCURRENCY_TAG = "pipebridge:MaxConcurrentExecutions"


def processing(name, script, env=None, args=None, depends=None, extra_argv=("sh",)):
    """A Processing step running `/bin/sh -c script` in its working directory."""
    spec = {"ImageUri": "local", "ContainerEntrypoint": ["/bin/sh", "-c", script] + list(extra_argv)}
    if args:
        spec["ContainerArguments"] = args
    step = {"Name": name, "Type": "Processing", "Arguments": {
        "AppSpecification": spec,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 1}},
        "RoleArn": ROLE}}
    if env:
        step["Arguments"]["Environment"] = env
    if depends:
        step["DependsOn"] = depends
    return step


def definition(steps, params=()):
    return json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": list(params), "Steps": steps})


SIMPLE = definition([processing("One", "echo one > one.txt")])

# Two parallel Processing steps using parameters (Environment, ContainerArguments),
# a Condition on a parameter, and a final step on the branch taken.
FOUR = definition([
    processing("PrepA", 'printf "%s" "$GREETING" > a.txt', env={"GREETING": {"Get": "Parameters.Greeting"}}),
    processing("PrepB", 'printf "%s" "$1" > b.txt', args=[{"Get": "Parameters.Count"}]),
    {"Name": "Check", "Type": "Condition", "DependsOn": ["PrepA", "PrepB"], "Arguments": {
        "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": {"Get": "Parameters.Count"},
                        "RightValue": {"Get": "Parameters.Threshold"}}],
        "IfSteps": [processing("Final", "cat ../PrepA/a.txt ../PrepB/b.txt > final.txt")],
        "ElseSteps": [processing("Skipped", "echo skipped > skipped.txt")]}},
], params=[{"Name": "Greeting", "Type": "String", "DefaultValue": "hello"},
           {"Name": "Count", "Type": "Integer", "DefaultValue": 1},
           {"Name": "Threshold", "Type": "Integer", "DefaultValue": 5}])

SLEEPER = definition([processing("Nap", "sleep 30")])


def gated(flag):
    """One step that succeeds at once when `flag` exists and otherwise sleeps
    (Wait) or fails (Gate)."""
    return definition([
        processing("Count", "echo run >> runs.txt"),
        processing("Gate", 'if [ -f "$FLAG" ]; then echo passed > gate.txt; else echo "no flag yet" >&2; '
                           'sleep "$NAP"; exit 4; fi', env={"FLAG": flag, "NAP": {"Get": "Parameters.Nap"}},
                   depends=["Count"]),
    ], params=[{"Name": "Nap", "Type": "String", "DefaultValue": "0"}])


def raw(url, op, body):
    """A SageMaker request, answered as (status, JSON body): shows members this
    CLI's model does not know."""
    return harness.raw(url, op, body, service="sagemaker", prefix="SageMaker", timeout=10)


class Base(ServerTest):
    def setUp(self):
        self.srv = start(Server())
        self.sm = self.srv.boto("sagemaker")


    def create(self, name, defn=SIMPLE, *extra):
        return self.ok("sagemaker", "create-pipeline", "--pipeline-name", name, "--role-arn", ROLE,
                       "--pipeline-definition", defn, *extra)["PipelineArn"]

    def start_exec(self, name, *extra):
        return self.ok("sagemaker", "start-pipeline-execution", "--pipeline-name", name, *extra)[
            "PipelineExecutionArn"]

    def describe_exec(self, arn):
        return self.sm.describe_pipeline_execution(PipelineExecutionArn=arn)

    def wait(self, arn, statuses, timeout=30):
        deadline = time.time() + timeout
        while True:
            d = self.describe_exec(arn)
            if d["PipelineExecutionStatus"] in statuses:
                return d
            if time.time() > deadline:
                self.fail("execution %s still %s after %ss (wanted %s); steps: %s" % (
                    arn, d["PipelineExecutionStatus"], timeout, statuses, self.steps(arn)))
            time.sleep(0.1)

    def steps(self, arn, **kw):
        return self.sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, **kw)["PipelineExecutionSteps"]

    def wait_step(self, arn, step, statuses, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for s in self.steps(arn):
                if s["StepName"] == step and s["StepStatus"] in statuses:
                    return s
            time.sleep(0.1)
        self.fail("step %s of %s never reached %s: %s" % (step, arn, statuses, self.steps(arn)))

    def workdir(self, arn, step):
        return os.path.join(self.srv.data_dir, "executions", arn.rsplit("/", 1)[1], step)


class Pipelines(Base):
    """The pipeline resource: needs the store, not the runner."""

    def test_create_and_describe(self):
        arn = self.create("My-Pipe", SIMPLE, "--pipeline-description", "first", "--pipeline-display-name", "Shown",
                          "--parallelism-configuration", "MaxParallelExecutionSteps=2")
        self.assertEqual(arn, ARN_PREFIX + "my-pipe")  # SageMaker writes the name in lowercase
        for ref in ("My-Pipe", arn, "MY-PIPE", ARN_PREFIX + "My-Pipe"):
            d = self.ok("sagemaker", "describe-pipeline", "--pipeline-name", ref)
            self.assertEqual(d["PipelineArn"], arn)
            self.assertEqual(d["PipelineName"], "My-Pipe")
            self.assertEqual(d["PipelineDisplayName"], "Shown")
            self.assertEqual(d["PipelineDescription"], "first")
            self.assertEqual(d["RoleArn"], ROLE)
            self.assertEqual(d["PipelineStatus"], "Active")
            self.assertEqual(json.loads(d["PipelineDefinition"]), json.loads(SIMPLE))
            self.assertEqual(d["ParallelismConfiguration"], {"MaxParallelExecutionSteps": 2})
            self.assertIn("CreationTime", d)
            self.assertIn("LastModifiedTime", d)
            self.assertNotIn("LastRunTime", d)
        status, body = raw(self.srv.url, "DescribePipeline", {"PipelineName": "my-pipe"})
        self.assertEqual(status, 200)
        self.assertIsInstance(body["CreationTime"], float)
        self.assertEqual(body["PipelineVersionId"], 1)
        # the display name defaults to the name
        self.create("plain")
        self.assertEqual(self.ok("sagemaker", "describe-pipeline", "--pipeline-name", "plain")["PipelineDisplayName"],
                         "plain")
        err = self.fails("ResourceNotFound", "sagemaker", "describe-pipeline", "--pipeline-name", "nope")
        self.assertIn("Pipeline '%snope' does not exist." % ARN_PREFIX, err)
        other = "arn:aws:sagemaker:us-east-1:111111111111:pipeline/my-pipe"
        err = self.fails("ResourceNotFound", "sagemaker", "describe-pipeline", "--pipeline-name", other)
        self.assertIn("Pipeline '%s' does not exist." % other, err)
        status, body = raw(self.srv.url, "DescribePipeline", {"PipelineName": "nope"})
        self.assertEqual((status, body["__type"]), (400, "ResourceNotFound"))
        self.assertEqual(body["Message"], body["message"])

    def test_create_validation(self):
        err = self.fails("ValidationException", "sagemaker", "create-pipeline", "--pipeline-name", "bad_name",
                         "--role-arn", ROLE, "--pipeline-definition", SIMPLE)
        self.assertIn("1 validation error detected: Value 'bad_name' at 'pipelineName' failed to satisfy constraint: "
                      "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}", err)
        err = self.fails("ValidationException", "sagemaker", "create-pipeline", "--pipeline-name", "trailing-",
                         "--role-arn", "arn:aws:iam::12345:role/short", "--pipeline-definition", SIMPLE)
        self.assertIn("2 validation errors detected: ", err)
        self.assertIn("Value 'arn:aws:iam::12345:role/short' at 'roleArn' failed to satisfy constraint: Member must "
                      "satisfy regular expression pattern: "
                      "^arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+$", err)
        err = self.fails("ValidationException", "sagemaker", "create-pipeline", "--pipeline-name", "p",
                         "--role-arn", ROLE, "--pipeline-definition", '{"Version": ')
        self.assertIn("Unable to parse pipeline definition.", err)
        lam = definition([{"Name": "L", "Type": "Lambda", "FunctionArn": "arn:aws:lambda:us-east-1:0:function:f",
                           "Arguments": {}}])
        err = self.fails("ValidationException", "sagemaker", "create-pipeline", "--pipeline-name", "p",
                         "--role-arn", ROLE, "--pipeline-definition", lam)
        self.assertIn("Lambda", err)
        self.assertIn("not supported", err)
        noentry = definition([{"Name": "P", "Type": "Processing", "Arguments": {
            "AppSpecification": {"ImageUri": "123.dkr.ecr.us-east-1.amazonaws.com/x:latest"}}}])
        err = self.fails("ValidationException", "sagemaker", "create-pipeline", "--pipeline-name", "p",
                         "--role-arn", ROLE, "--pipeline-definition", noentry)
        self.assertIn("names no entrypoint", err)
        err = self.fails("ValidationException", "sagemaker", "create-pipeline", "--pipeline-name", "p",
                         "--role-arn", ROLE, "--pipeline-definition-s3-location", "Bucket=bkt,ObjectKey=k")
        self.assertIn("PipelineDefinitionS3Location is not supported by pipebridge", err)
        err = self.fails("ValidationException", "sagemaker", "create-pipeline", "--pipeline-name", "p",
                         "--role-arn", ROLE)
        self.assertIn("PipelineDefinition", err)
        for bad in ("0", "abc", "1001", "", "-3", "2.5"):
            err = self.fails("ValidationException", "sagemaker", "create-pipeline", "--pipeline-name", "p",
                             "--role-arn", ROLE, "--pipeline-definition", SIMPLE,
                             "--tags", "Key=%s,Value=%s" % (CONCURRENCY_TAG, bad))
            self.assertIn(CONCURRENCY_TAG, err)
            self.assertIn("must be an integer from 1 to 1000", err)
        # nothing was created by any of these
        self.assertEqual(self.ok("sagemaker", "list-pipelines")["PipelineSummaries"], [])

    def test_duplicate_name_and_token_replay(self):
        token = "a" * 40
        arn = self.create("dup", SIMPLE, "--client-request-token", token)
        self.assertEqual(self.create("dup", SIMPLE, "--client-request-token", token), arn)  # same request again
        err = self.fails("ValidationException", "sagemaker", "create-pipeline", "--pipeline-name", "DUP",
                         "--role-arn", ROLE, "--pipeline-definition", SIMPLE)
        self.assertIn("Pipeline names must be unique within an AWS account and region. Pipeline with name (DUP) "
                      "already exists.", err)
        self.assertEqual(len(self.ok("sagemaker", "list-pipelines")["PipelineSummaries"]), 1)
        # (botocore checks minimum lengths itself: the server's own check, seen raw)
        status, body = raw(self.srv.url, "CreatePipeline", {"PipelineName": "short-token", "RoleArn": ROLE,
                                                            "PipelineDefinition": SIMPLE,
                                                            "ClientRequestToken": "x" * 31})
        self.assertEqual((status, body["__type"]), (400, "ValidationException"))
        self.assertIn("at 'clientRequestToken' failed to satisfy constraint: Member must have length greater than or "
                      "equal to 32", body["Message"])

    def test_list_filter_sort_page(self):
        names = ["alpha-1", "Alpha-2", "beta-1", "alpha-3", "gamma"]
        for n in names:
            self.create(n)
            time.sleep(0.01)  # distinct creation times
        listed = lambda *a: [p["PipelineName"] for p in  # noqa: E731
                             self.ok("sagemaker", "list-pipelines", *a)["PipelineSummaries"]]
        self.assertEqual(listed(), list(reversed(names)))  # newest first by default
        self.assertEqual(listed("--sort-order", "Ascending"), names)
        self.assertEqual(listed("--sort-by", "Name", "--sort-order", "Ascending"),
                         ["alpha-1", "Alpha-2", "alpha-3", "beta-1", "gamma"])
        self.assertEqual(listed("--pipeline-name-prefix", "ALPHA", "--sort-by", "Name", "--sort-order", "Ascending"),
                         ["alpha-1", "Alpha-2", "alpha-3"])
        self.assertEqual(listed("--page-size", "2"), list(reversed(names)))  # the CLI follows NextToken
        summary = self.ok("sagemaker", "list-pipelines", "--pipeline-name-prefix", "gamma")["PipelineSummaries"][0]
        self.assertEqual(summary["PipelineArn"], ARN_PREFIX + "gamma")
        self.assertEqual(summary["RoleArn"], ROLE)
        pages, token = [], None
        while True:
            kw = {"SortBy": "Name", "SortOrder": "Descending", "MaxResults": 2}
            if token:
                kw["NextToken"] = token
            out = self.sm.list_pipelines(**kw)
            pages.append([p["PipelineName"] for p in out["PipelineSummaries"]])
            token = out.get("NextToken")
            if not token:
                break
        self.assertEqual(pages, [["gamma", "beta-1"], ["alpha-3", "Alpha-2"], ["alpha-1"]])
        # a token only continues the listing it came from
        first = self.sm.list_pipelines(SortBy="Name", MaxResults=2)
        with self.assertRaises(ClientError) as cm:
            self.sm.list_pipelines(SortBy="CreationTime", MaxResults=2, NextToken=first["NextToken"])
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")
        with self.assertRaises(ClientError) as cm:
            self.sm.list_pipelines(NextToken="not-a-token")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")
        # CreatedAfter / CreatedBefore (raw: botocore sends whole seconds, these were created milliseconds apart)
        status, body = raw(self.srv.url, "ListPipelines", {})
        created = {p["PipelineName"]: p["CreationTime"] for p in body["PipelineSummaries"]}
        t = created["beta-1"]
        names_of = lambda b: [p["PipelineName"] for p in b["PipelineSummaries"]]  # noqa: E731
        status, body = raw(self.srv.url, "ListPipelines", {"CreatedAfter": t, "SortOrder": "Ascending"})
        self.assertEqual(names_of(body), ["alpha-3", "gamma"])
        status, body = raw(self.srv.url, "ListPipelines", {"CreatedBefore": t, "SortOrder": "Ascending"})
        self.assertEqual(names_of(body), ["alpha-1", "Alpha-2"])
        status, body = raw(self.srv.url, "ListPipelines", {"CreatedAfter": "yesterday"})
        self.assertEqual((status, body["__type"]), (400, "SerializationException"))
        err = self.fails("ValidationException", "sagemaker", "list-pipelines", "--max-results", "101")
        self.assertIn("at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100",
                      err)

    def test_update_versions(self):
        arn = self.create("upd", SIMPLE, "--pipeline-description", "v1")
        out = self.ok("sagemaker", "update-pipeline", "--pipeline-name", "UPD", "--pipeline-description", "v2")
        self.assertEqual(out["PipelineArn"], arn)
        status, body = raw(self.srv.url, "UpdatePipeline", {"PipelineName": "upd", "PipelineDefinition": FOUR,
                                                            "ParallelismConfiguration":
                                                                {"MaxParallelExecutionSteps": 1}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"PipelineArn": arn, "PipelineVersionId": 3})
        d = self.ok("sagemaker", "describe-pipeline", "--pipeline-name", "upd")
        self.assertEqual(d["PipelineDescription"], "v2")
        self.assertEqual(json.loads(d["PipelineDefinition"]), json.loads(FOUR))
        self.assertEqual(d["ParallelismConfiguration"], {"MaxParallelExecutionSteps": 1})
        self.assertEqual(d["RoleArn"], ROLE)  # unchanged members stay
        status, body = raw(self.srv.url, "DescribePipeline", {"PipelineName": "upd", "PipelineVersionId": 1})
        self.assertEqual(status, 200, body)
        self.assertEqual((json.loads(body["PipelineDefinition"]), body["PipelineVersionId"]),
                         (json.loads(SIMPLE), 1))
        status, body = raw(self.srv.url, "DescribePipeline", {"PipelineName": "upd", "PipelineVersionId": 9})
        self.assertEqual((status, body["__type"]), (400, "ResourceNotFound"))
        # an invalid definition changes nothing
        err = self.fails("ValidationException", "sagemaker", "update-pipeline", "--pipeline-name", "upd",
                         "--pipeline-definition", "[]")
        self.assertIn("Unable to parse pipeline definition.", err)
        status, body = raw(self.srv.url, "DescribePipeline", {"PipelineName": "upd"})
        self.assertEqual(body["PipelineVersionId"], 3)
        err = self.fails("ResourceNotFound", "sagemaker", "update-pipeline", "--pipeline-name", "ghost",
                         "--pipeline-description", "x")
        self.assertIn("Pipeline '%sghost' does not exist." % ARN_PREFIX, err)

    def test_tags(self):
        arn = self.create("tagged", SIMPLE, "--tags", "Key=team,Value=ml", "Key=%s,Value=3" % CONCURRENCY_TAG)
        tags = lambda ref: self.ok("sagemaker", "list-tags", "--resource-arn", ref)["Tags"]  # noqa: E731
        self.assertEqual(tags(arn), [{"Key": CONCURRENCY_TAG, "Value": "3"}, {"Key": "team", "Value": "ml"}])
        out = self.ok("sagemaker", "add-tags", "--resource-arn", ARN_PREFIX + "Tagged", "--tags",
                      "Key=team,Value=data", "Key=env,Value=dev")
        self.assertEqual(out["Tags"], [{"Key": "team", "Value": "data"}, {"Key": "env", "Value": "dev"}])
        self.assertEqual(tags(arn), [{"Key": "env", "Value": "dev"}, {"Key": CONCURRENCY_TAG, "Value": "3"},
                                     {"Key": "team", "Value": "data"}])
        for bad in ("0", "1001", "ten"):
            err = self.fails("ValidationException", "sagemaker", "add-tags", "--resource-arn", arn, "--tags",
                             "Key=%s,Value=%s" % (CONCURRENCY_TAG, bad))
            self.assertIn("must be an integer from 1 to 1000", err)
        self.ok("sagemaker", "add-tags", "--resource-arn", arn, "--tags", "Key=%s,Value=1000" % CONCURRENCY_TAG)
        self.ok("sagemaker", "delete-tags", "--resource-arn", arn, "--tag-keys", "env", CONCURRENCY_TAG, "absent")
        self.assertEqual(tags(arn), [{"Key": "team", "Value": "data"}])
        err = self.fails("ResourceNotFound", "sagemaker", "list-tags", "--resource-arn", ARN_PREFIX + "ghost")
        self.assertIn("Pipeline '%sghost' does not exist." % ARN_PREFIX, err)
        err = self.fails("ValidationException", "sagemaker", "add-tags", "--resource-arn",
                         "arn:aws:sagemaker:us-east-1:000000000000:training-job/j", "--tags", "Key=a,Value=b")
        self.assertIn("Tags on training-job resources are not supported by pipebridge", err)
        err = self.fails("ValidationException", "sagemaker", "list-tags", "--resource-arn",
                         arn + "/execution/abcdefabcdef")
        self.assertIn("Tags on pipeline executions are not supported by pipebridge", err)
        err = self.fails("ValidationException", "sagemaker", "add-tags", "--resource-arn", arn, "--tags",
                         "Key=bad*key,Value=b")
        self.assertIn("at 'tags.1.member.key' failed to satisfy constraint", err)
        err = self.fails("ValidationException", "sagemaker", "list-tags", "--resource-arn", "not-an-arn")
        self.assertIn("at 'resourceArn' failed to satisfy constraint", err)
        many = ["Key=k%d,Value=v" % i for i in range(50)]
        err = self.fails("ResourceLimitExceeded", "sagemaker", "add-tags", "--resource-arn", arn, "--tags", *many)
        self.assertEqual(tags(arn), [{"Key": "team", "Value": "data"}])  # all or nothing

    def test_delete(self):
        arn = self.create("gone", SIMPLE, "--tags", "Key=a,Value=b")
        self.assertEqual(self.ok("sagemaker", "delete-pipeline", "--pipeline-name", "Gone")["PipelineArn"], arn)
        self.fails("ResourceNotFound", "sagemaker", "describe-pipeline", "--pipeline-name", "gone")
        err = self.fails("ResourceNotFound", "sagemaker", "delete-pipeline", "--pipeline-name", "gone")
        self.assertIn("Pipeline '%s' does not exist." % arn, err)
        # the name is free again, without the old tags
        self.assertEqual(self.create("gone"), arn)
        self.assertEqual(self.ok("sagemaker", "list-tags", "--resource-arn", arn)["Tags"], [])


class Executions(Base):
    """Executions: need the runner."""

    def test_four_steps_parameters_condition(self):
        pipe = self.create("four", FOUR)
        arn = self.start_exec("four", "--pipeline-parameters", "Name=Greeting,Value=hi there", "Name=Count,Value=7",
                              "--pipeline-execution-display-name", "run-1", "--pipeline-execution-description",
                              "first run")
        self.assertTrue(arn.startswith(pipe + "/execution/"), arn)
        d = self.wait(arn, {"Succeeded", "Failed", "Stopped"})
        self.assertEqual(d["PipelineExecutionStatus"], "Succeeded", self.steps(arn))
        d = self.ok("sagemaker", "describe-pipeline-execution", "--pipeline-execution-arn", arn)
        self.assertEqual((d["PipelineArn"], d["PipelineExecutionArn"]), (pipe, arn))
        self.assertEqual(d["PipelineExecutionDisplayName"], "run-1")
        self.assertEqual(d["PipelineExecutionDescription"], "first run")
        self.assertNotIn("FailureReason", d)
        status, body = raw(self.srv.url, "DescribePipelineExecution", {"PipelineExecutionArn": arn})
        self.assertEqual(body["PipelineVersionId"], 1)
        self.assertNotIn("PipebridgeQueued", body)
        self.assertIn("LastRunTime", self.ok("sagemaker", "describe-pipeline", "--pipeline-name", "four"))

        steps = self.ok("sagemaker", "list-pipeline-execution-steps", "--pipeline-execution-arn", arn)[
            "PipelineExecutionSteps"]
        by = {s["StepName"]: s for s in steps}
        self.assertEqual(sorted(by), ["Check", "Final", "PrepA", "PrepB"])  # Skipped: branch not taken
        self.assertEqual(steps[0]["StepName"], "Final")  # newest first
        self.assertEqual({s["StepStatus"] for s in steps}, {"Succeeded"})
        self.assertEqual(by["Check"]["Metadata"], {"Condition": {"Outcome": "True"}})
        for name in ("PrepA", "PrepB", "Final"):
            self.assertIn("ProcessingJob", by[name]["Metadata"])
            self.assertGreaterEqual(by[name]["AttemptCount"], 1)
            self.assertLessEqual(by[name]["StartTime"], by[name]["EndTime"])
        asc = self.steps(arn, SortOrder="Ascending")
        self.assertEqual({s["StepName"] for s in asc[:2]}, {"PrepA", "PrepB"})
        self.assertEqual(asc[-1]["StepName"], "Final")
        paged = [s["StepName"] for s in self.ok("sagemaker", "list-pipeline-execution-steps",
                                                "--pipeline-execution-arn", arn, "--page-size", "1")[
            "PipelineExecutionSteps"]]
        self.assertEqual(paged, [s["StepName"] for s in steps])
        status, body = raw(self.srv.url, "ListPipelineExecutionSteps", {"PipelineExecutionArn": arn})
        logs = {s["StepName"]: s.get("LogFiles") for s in body["PipelineExecutionSteps"]}
        self.assertEqual(logs["PrepA"]["Stdout"], os.path.join(self.workdir(arn, "PrepA"), "stdout.log"))
        self.assertIsNone(logs["Check"])

        params = self.ok("sagemaker", "list-pipeline-parameters-for-execution", "--pipeline-execution-arn", arn)[
            "PipelineParameters"]
        self.assertEqual(sorted((p["Name"], p["Value"]) for p in params),
                         [("Count", "7"), ("Greeting", "hi there"), ("Threshold", "5")])
        page = self.sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn, MaxResults=2)
        self.assertEqual(len(page["PipelineParameters"]), 2)
        rest = self.sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn, MaxResults=2,
                                                              NextToken=page["NextToken"])
        self.assertEqual(len(rest["PipelineParameters"]), 1)
        self.assertNotIn("NextToken", rest)

        with open(os.path.join(self.workdir(arn, "PrepA"), "a.txt")) as f:
            self.assertEqual(f.read(), "hi there")
        with open(os.path.join(self.workdir(arn, "PrepB"), "b.txt")) as f:
            self.assertEqual(f.read(), "7")
        with open(os.path.join(self.workdir(arn, "Final"), "final.txt")) as f:
            self.assertEqual(f.read(), "hi there7")
        self.assertFalse(os.path.exists(self.workdir(arn, "Skipped")))

        # the other branch, with the default Count (1 < 5)
        arn2 = self.start_exec("FOUR")
        self.assertEqual(self.wait(arn2, {"Succeeded", "Failed"})["PipelineExecutionStatus"], "Succeeded")
        names = {s["StepName"]: s for s in self.steps(arn2)}
        self.assertEqual(sorted(names), ["Check", "PrepA", "PrepB", "Skipped"])
        self.assertEqual(names["Check"]["Metadata"]["Condition"]["Outcome"], "False")

        # ListPipelineExecutions: newest first, by name or ARN, paged
        listed = self.ok("sagemaker", "list-pipeline-executions", "--pipeline-name", pipe)[
            "PipelineExecutionSummaries"]
        self.assertEqual([e["PipelineExecutionArn"] for e in listed], [arn2, arn])
        self.assertEqual(listed[1]["PipelineExecutionDisplayName"], "run-1")
        self.assertEqual(listed[1]["PipelineExecutionStatus"], "Succeeded")
        self.assertIn("StartTime", listed[1])
        asc = self.sm.list_pipeline_executions(PipelineName="four", SortOrder="Ascending", MaxResults=1)
        self.assertEqual([e["PipelineExecutionArn"] for e in asc["PipelineExecutionSummaries"]], [arn])
        nxt = self.sm.list_pipeline_executions(PipelineName="four", SortOrder="Ascending", MaxResults=1,
                                               NextToken=asc["NextToken"])
        self.assertEqual([e["PipelineExecutionArn"] for e in nxt["PipelineExecutionSummaries"]], [arn2])
        err = self.fails("ResourceNotFound", "sagemaker", "list-pipeline-executions", "--pipeline-name", "ghost")
        self.assertIn("Pipeline '%sghost' does not exist." % ARN_PREFIX, err)

        # UpdatePipelineExecution and the definition an execution ran
        self.ok("sagemaker", "update-pipeline-execution", "--pipeline-execution-arn", arn,
                "--pipeline-execution-display-name", "renamed", "--pipeline-execution-description", "after")
        d = self.describe_exec(arn)
        self.assertEqual((d["PipelineExecutionDisplayName"], d["PipelineExecutionDescription"]), ("renamed", "after"))
        self.assertEqual(d["PipelineExecutionStatus"], "Succeeded")
        self.ok("sagemaker", "update-pipeline", "--pipeline-name", "four", "--pipeline-definition", SIMPLE)
        got = self.ok("sagemaker", "describe-pipeline-definition-for-execution", "--pipeline-execution-arn", arn)
        self.assertEqual(json.loads(got["PipelineDefinition"]), json.loads(FOUR))
        self.assertIn("CreationTime", got)
        ghost = pipe + "/execution/zzzzzzzzzzzz"
        err = self.fails("ResourceNotFound", "sagemaker", "describe-pipeline-execution", "--pipeline-execution-arn",
                         ghost)
        self.assertIn("Pipeline execution '%s' does not exist." % ghost, err)

    def test_failing_step_and_retry(self):
        flag = os.path.join(self.srv.data_dir, "gate-open")
        self.create("gated", gated(flag))
        arn = self.start_exec("gated")
        d = self.wait(arn, {"Succeeded", "Failed", "Stopped"})
        self.assertEqual(d["PipelineExecutionStatus"], "Failed")
        self.assertTrue(d.get("FailureReason"), d)
        gate = {s["StepName"]: s for s in self.steps(arn)}["Gate"]
        self.assertEqual((gate["StepStatus"], gate["FailureReason"]), ("Failed", "exit code 4: no flag yet"))
        listed = self.sm.list_pipeline_executions(PipelineName="gated")["PipelineExecutionSummaries"][0]
        self.assertEqual(listed["PipelineExecutionStatus"], "Failed")
        self.assertIn("PipelineExecutionFailureReason", listed)
        open(flag, "w").close()
        out = self.ok("sagemaker", "retry-pipeline-execution", "--pipeline-execution-arn", arn)
        self.assertEqual(out["PipelineExecutionArn"], arn)
        d = self.wait(arn, {"Succeeded", "Failed", "Stopped"})
        self.assertEqual(d["PipelineExecutionStatus"], "Succeeded", self.steps(arn))
        steps = {s["StepName"]: s for s in self.steps(arn)}
        self.assertEqual(steps["Gate"]["StepStatus"], "Succeeded")
        with open(os.path.join(self.workdir(arn, "Count"), "runs.txt")) as f:
            self.assertEqual(f.read(), "run\n")  # the step that had succeeded did not run again
        with open(os.path.join(self.workdir(arn, "Gate"), "gate.txt")) as f:
            self.assertEqual(f.read(), "passed\n")
        # a succeeded execution cannot be retried
        err = self.fails("ConflictException", "sagemaker", "retry-pipeline-execution", "--pipeline-execution-arn",
                         arn)

    def test_stop(self):
        self.create("sleepy", SLEEPER)
        arn = self.start_exec("sleepy")
        self.wait_step(arn, "Nap", {"Executing"})
        t0 = time.time()
        self.assertEqual(self.ok("sagemaker", "stop-pipeline-execution", "--pipeline-execution-arn", arn)[
            "PipelineExecutionArn"], arn)
        self.assertIn(self.describe_exec(arn)["PipelineExecutionStatus"], {"Stopping", "Stopped"})
        d = self.wait(arn, {"Stopped", "Failed", "Succeeded"}, timeout=15)
        self.assertEqual(d["PipelineExecutionStatus"], "Stopped")
        self.assertLess(time.time() - t0, 10)
        self.assertEqual({s["StepName"]: s["StepStatus"] for s in self.steps(arn)}, {"Nap": "Stopped"})
        # stopping a finished execution is a conflict
        self.fails("ConflictException", "sagemaker", "stop-pipeline-execution", "--pipeline-execution-arn", arn)
        self.fails("ResourceNotFound", "sagemaker", "stop-pipeline-execution", "--pipeline-execution-arn",
                   ARN_PREFIX + "sleepy/execution/zzzzzzzzzzzz")

    def test_delete_while_running_conflicts(self):
        self.create("busy", SLEEPER)
        arn = self.start_exec("busy")
        err = self.fails("ConflictException", "sagemaker", "delete-pipeline", "--pipeline-name", "busy")
        self.assertIn("has running executions", err)
        self.ok("sagemaker", "stop-pipeline-execution", "--pipeline-execution-arn", arn)
        self.wait(arn, {"Stopped", "Failed"}, timeout=15)
        self.ok("sagemaker", "delete-pipeline", "--pipeline-name", "busy")
        self.fails("ResourceNotFound", "sagemaker", "describe-pipeline-execution", "--pipeline-execution-arn", arn)

    def test_bad_parameters_create_nothing(self):
        self.create("four", FOUR)
        err = self.fails("ValidationException", "sagemaker", "start-pipeline-execution", "--pipeline-name", "four",
                         "--pipeline-parameters", "Name=Nope,Value=1")
        self.assertIn("Unknown parameter 'Nope'", err)
        err = self.fails("ValidationException", "sagemaker", "start-pipeline-execution", "--pipeline-name", "four",
                         "--pipeline-parameters", "Name=Count,Value=abc")
        self.assertIn("Unexpected type for parameter 'Count'", err)
        err = self.fails("ValidationException", "sagemaker", "start-pipeline-execution", "--pipeline-name", "four",
                         "--pipeline-parameters", "Name=bad.name,Value=1")
        self.assertIn("at 'pipelineParameters.1.member.name' failed to satisfy constraint: Member must satisfy "
                      "regular expression pattern: ^[A-Za-z0-9\\-_]*$", err)
        err = self.fails("ValidationException", "sagemaker", "start-pipeline-execution", "--pipeline-name", "four",
                         "--pipeline-execution-display-name", "no_underscores")
        self.assertIn("at 'pipelineExecutionDisplayName' failed to satisfy constraint: Member must satisfy regular "
                      "expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}", err)
        err = self.fails("ResourceNotFound", "sagemaker", "start-pipeline-execution", "--pipeline-name", "ghost")
        self.assertIn("Pipeline '%sghost' does not exist." % ARN_PREFIX, err)
        status, body = raw(self.srv.url, "StartPipelineExecution", {
            "PipelineName": "four", "ClientRequestToken": "t" * 36,
            "SelectiveExecutionConfig": {"SelectedSteps": [{"StepName": "PrepA"}]}})
        self.assertEqual((status, body["__type"]), (400, "ValidationException"))
        self.assertIn("SelectiveExecutionConfig is not supported by pipebridge", body["Message"])
        status, body = raw(self.srv.url, "StartPipelineExecution", {
            "PipelineName": "four", "ClientRequestToken": "t" * 36, "MlflowExperimentName": "e"})
        self.assertIn("MlflowExperimentName is not supported by pipebridge", body.get("Message", ""))
        self.assertEqual(self.ok("sagemaker", "list-pipeline-executions", "--pipeline-name", "four")[
            "PipelineExecutionSummaries"], [])

    def test_client_token_idempotency(self):
        self.create("once", SIMPLE)
        token = "f" * 36
        a = self.start_exec("once", "--client-request-token", token)
        b = self.start_exec("ONCE", "--client-request-token", token)
        self.assertEqual(a, b)
        self.assertEqual(len(self.ok("sagemaker", "list-pipeline-executions", "--pipeline-name", "once")[
            "PipelineExecutionSummaries"]), 1)
        self.wait(a, {"Succeeded"})

    def test_concurrency_tag_queues(self):
        self.create("one-at-a-time", SLEEPER, "--tags", "Key=%s,Value=1" % CONCURRENCY_TAG)
        first = self.start_exec("one-at-a-time")
        second = self.start_exec("one-at-a-time")
        self.wait_step(first, "Nap", {"Executing"})
        status, body = raw(self.srv.url, "DescribePipelineExecution", {"PipelineExecutionArn": second})
        self.assertEqual((body["PipelineExecutionStatus"], body.get("PipebridgeQueued")), ("Executing", True))
        self.assertEqual(self.steps(second), [])
        self.ok("sagemaker", "stop-pipeline-execution", "--pipeline-execution-arn", first)
        self.wait_step(second, "Nap", {"Executing"}, timeout=15)
        self.ok("sagemaker", "stop-pipeline-execution", "--pipeline-execution-arn", second)
        self.wait(second, {"Stopped"}, timeout=15)

    def test_update_while_running_is_kept(self):
        # long enough that two CLI calls finish before it does, even on a loaded machine
        self.create("slow", definition([processing("Nap", "sleep 10")]))
        arn = self.start_exec("slow")
        self.wait_step(arn, "Nap", {"Executing"})
        self.ok("sagemaker", "update-pipeline-execution", "--pipeline-execution-arn", arn,
                "--pipeline-execution-description", "changed while running",
                "--parallelism-configuration", "MaxParallelExecutionSteps=3")
        d = self.describe_exec(arn)
        self.assertEqual(d["PipelineExecutionStatus"], "Executing")  # the update did not touch the status
        d = self.wait(arn, {"Succeeded", "Failed"}, timeout=60)
        self.assertEqual(d["PipelineExecutionStatus"], "Succeeded")
        self.assertEqual(d.get("PipelineExecutionDescription"), "changed while running")
        self.assertEqual(d.get("ParallelismConfiguration"), {"MaxParallelExecutionSteps": 3})

    def test_recreated_pipeline_runs_its_new_definition(self):
        self.create("again", definition([processing("Old", "echo old > out.txt")]))
        self.wait(self.start_exec("again"), {"Succeeded"})
        self.ok("sagemaker", "delete-pipeline", "--pipeline-name", "again")
        self.create("again", definition([processing("New", "echo new > out.txt")]))
        arn = self.start_exec("again")
        self.assertEqual(self.wait(arn, {"Succeeded", "Failed"})["PipelineExecutionStatus"], "Succeeded")
        self.assertEqual([s["StepName"] for s in self.steps(arn)], ["New"])


class Restart(Base):
    def setUp(self):
        self.data_dir = tempfile.mkdtemp(prefix="pb-e2e-")
        self.srv = start(Server(data_dir=self.data_dir))
        self.sm = self.srv.boto("sagemaker")

    def tearDown(self):
        self.srv.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def test_kill_9_during_a_step_then_retry(self):
        flag = os.path.join(self.data_dir, "gate-open")
        self.create("durable", gated(flag))
        arn = self.start_exec("durable", "--pipeline-parameters", "Name=Nap,Value=30")
        self.wait_step(arn, "Gate", {"Executing"})
        self.srv.stop(signal.SIGKILL)
        start(self.srv)
        self.sm = self.srv.boto("sagemaker")
        d = self.wait(arn, {"Failed", "Stopped", "Succeeded"}, timeout=15)
        self.assertEqual(d["PipelineExecutionStatus"], "Failed")
        self.assertTrue(d.get("FailureReason"), d)
        gate = {s["StepName"]: s for s in self.steps(arn)}["Gate"]
        self.assertEqual(gate["StepStatus"], "Failed")
        self.assertIn("restarted", gate["FailureReason"])  # the step says why
        open(flag, "w").close()
        self.ok("sagemaker", "retry-pipeline-execution", "--pipeline-execution-arn", arn)
        d = self.wait(arn, {"Failed", "Stopped", "Succeeded"}, timeout=30)
        self.assertEqual(d["PipelineExecutionStatus"], "Succeeded", self.steps(arn))
        with open(os.path.join(self.workdir(arn, "Gate"), "gate.txt")) as f:
            self.assertEqual(f.read(), "passed\n")
        with open(os.path.join(self.workdir(arn, "Count"), "runs.txt")) as f:
            self.assertEqual(f.read(), "run\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
