"""End to end: schedule rules fire SageMaker pipeline targets on their ticks,
with `serve --clock manual` and Pipebridge.AdvanceClock, so no test waits for
a minute. Rules, targets and the pipeline are made with the real AWS CLI v2.

A rate(1 minute) rule and the seed's cron(0 8 ? * MON#1 *) ("the first
Monday of each month at 8am") start executions at the right ticks with the
target's parameters (one of them is $.time, so each execution names its
tick); a disabled rule stays quiet; a restart resumes the manual clock
where it stood; kill -9 right after ticks were committed loses and
duplicates nothing; with the real clock AdvanceClock is refused."""
import calendar
import json
import signal
import time
import unittest

from harness import Server, ServerTest, drain, raw

ACCOUNT = "000000000000"
ROLE = "arn:aws:iam::000000000000:role/r"
PIPE = "sched-pipe"
PIPE_ARN = "arn:aws:sagemaker:us-east-1:%s:pipeline/%s" % (ACCOUNT, PIPE)

DEFINITION = json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": [
    {"Name": "Kind", "Type": "String", "DefaultValue": "none"},
    {"Name": "Tick", "Type": "String", "DefaultValue": "none"}], "Steps": [{
        "Name": "Nothing", "Type": "Processing", "Arguments": {
            "AppSpecification": {"ImageUri": "local", "ContainerEntrypoint": ["/bin/true"]},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                      "VolumeSizeInGB": 1}},
            "RoleArn": ROLE}}]})


def epoch(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


T0 = epoch("2030-11-30T23:55:00Z")  # a Saturday; the first Monday of December 2030 is the 2nd


class Schedules(ServerTest):
    def setUp(self):
        self.srv = drain(Server(extra=["--clock", "manual"]).start())

    # ------------------------------------------------------------ helpers --

    def call(self, op, body):
        return raw(self.srv.url, op, body)

    def advance(self, **body):
        status, out = self.call("AdvanceClock", body)
        self.assertEqual(status, 200, out)
        return out

    def restart(self, sig=signal.SIGTERM):
        self.srv.stop(sig)
        self.srv = drain(Server(data_dir=self.srv.data_dir, extra=["--clock", "manual"]).start())
        self.srv.owned = True

    def executions(self):
        sm = self.srv.boto("sagemaker")
        out = sm.list_pipeline_executions(PipelineName=PIPE, MaxResults=100)["PipelineExecutionSummaries"]
        res = []
        for e in out:
            params = sm.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=e["PipelineExecutionArn"])["PipelineParameters"]
            res.append({p["Name"]: p["Value"] for p in params})
        return sorted((p["Kind"], p["Tick"]) for p in res)

    def wait_executions(self, want, timeout=30):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = self.executions()
            if len(got) >= len(want):
                break
            time.sleep(0.2)
        time.sleep(0.5)  # and nothing more arrives
        self.assertEqual(self.executions(), sorted(want))

    def target(self, rule, kind):
        self.ok("events", "put-targets", "--rule", rule, "--targets", json.dumps([{
            "Id": "p", "Arn": PIPE_ARN, "RoleArn": ROLE,
            "SageMakerPipelineParameters": {"PipelineParameterList": [
                {"Name": "Kind", "Value": kind}, {"Name": "Tick", "Value": "$.time"}]}}]))

    def next_fire(self, rule):
        # an extra member: botocore (so the AWS CLI) drops what its model lacks; read it raw
        status, out = raw(self.srv.url, "DescribeRule", {"Name": rule}, service="events", prefix="AWSEvents")
        self.assertEqual(status, 200, out)
        return out.get("NextFireTime")

    # -------------------------------------------------------------- tests --

    def test_ticks_restart_disable_kill(self):
        self.ok("sagemaker", "create-pipeline", "--pipeline-name", PIPE, "--role-arn", ROLE,
                 "--pipeline-definition", DEFINITION)
        out = self.advance(To=T0)
        self.assertEqual(out["Now"], T0)
        self.ok("events", "put-rule", "--name", "minutely", "--schedule-expression", "rate(1 minute)")
        self.ok("events", "put-rule", "--name", "monthly", "--schedule-expression", "cron(0 8 ? * MON#1 *)")
        self.ok("events", "put-rule", "--name", "quiet", "--schedule-expression", "rate(1 minute)",
                 "--state", "DISABLED")
        self.target("minutely", "minutely")
        self.target("monthly", "monthly")
        self.target("quiet", "quiet")

        # DescribeRule's extra member
        self.assertEqual(self.next_fire("minutely"), T0 + 60)
        self.assertEqual(self.next_fire("monthly"), epoch("2030-12-02T08:00:00Z"))
        self.assertIsNone(self.next_fire("quiet"))
        status, out = self.call("PreviewSchedule", {"ScheduleExpression": "cron(0 8 ? * MON#1 *)",
                                                    "From": T0, "Count": 3})
        self.assertEqual(status, 200, out)
        self.assertEqual(out["FireTimes"], ["2030-12-02T08:00:00Z", "2031-01-06T08:00:00Z",
                                            "2031-02-03T08:00:00Z"])

        # three minutes: three ticks of the rate rule, none of the disabled one
        out = self.advance(Seconds=180)
        self.assertEqual(out["Fired"], 3)
        want = [("minutely", t) for t in ("2030-11-30T23:56:00Z", "2030-11-30T23:57:00Z", "2030-11-30T23:58:00Z")]
        self.wait_executions(want)

        # a restart resumes the manual clock where it stood
        self.restart()
        self.assertEqual(self.advance(Seconds=0)["Now"], T0 + 180)
        self.assertEqual(self.next_fire("minutely"), T0 + 240)

        # disabled: quiet over two days; the cron rule fires on its Monday at 8
        self.ok("events", "disable-rule", "--name", "minutely")
        self.assertIsNone(self.next_fire("minutely"))
        out = self.advance(To=epoch("2030-12-02T08:00:30Z"))
        self.assertEqual(out["Fired"], 1)
        want.append(("monthly", "2030-12-02T08:00:00Z"))
        self.wait_executions(want)
        self.assertEqual(self.next_fire("monthly"), epoch("2031-01-06T08:00:00Z"))

        # enabled again: resumes at its next tick (counted from its creation)
        self.ok("events", "enable-rule", "--name", "minutely")
        self.assertEqual(self.next_fire("minutely"), epoch("2030-12-02T08:01:00Z"))
        self.advance(Seconds=60)
        want.append(("minutely", "2030-12-02T08:01:00Z"))

        # kill -9 right after the ticks were committed: after the restart the
        # invocations are delivered, once, and the ticks do not fire again
        self.advance(Seconds=60)
        want.append(("minutely", "2030-12-02T08:02:00Z"))
        self.restart(signal.SIGKILL)
        self.wait_executions(want)
        out = self.advance(Seconds=60)
        self.assertEqual(out["Fired"], 1)
        want.append(("minutely", "2030-12-02T08:03:00Z"))
        self.wait_executions(want)

        # updating the expression applies at once
        self.ok("events", "put-rule", "--name", "minutely", "--schedule-expression", "rate(5 minutes)")
        self.assertEqual(self.next_fire("minutely"), epoch("2030-12-02T08:05:00Z"))

        # the clock does not go back
        status, out = self.call("AdvanceClock", {"To": T0})
        self.assertEqual(status, 400)
        self.assertEqual(out["__type"], "ValidationException")

    def test_manual_clock_misses_nothing_across_restart(self):
        # the clock stands still while the server is down: nothing to catch up
        self.ok("events", "put-rule", "--name", "r", "--schedule-expression", "rate(1 minute)")
        self.advance(Seconds=120)
        self.restart()
        self.assertEqual(self.advance(Seconds=0)["Fired"], 0)

    def test_preview_and_errors(self):
        status, out = self.call("PreviewSchedule", {"ScheduleExpression": "rate(1 minutes)"})
        self.assertEqual((status, out["__type"], out["message"]),
                         (400, "ValidationException", "Parameter ScheduleExpression is not valid."))
        status, out = self.call("PreviewSchedule", {"ScheduleExpression": "rate(5 minutes)", "From": T0})
        self.assertEqual(len(out["FireTimes"]), 10)
        self.assertEqual(out["FireTimes"][0], "2030-12-01T00:00:00Z")
        status, out = self.call("PreviewSchedule", {"ScheduleExpression": "at(2030-12-01T00:00:00)", "From": T0})
        self.assertEqual(out["FireTimes"], ["2030-12-01T00:00:00Z"])
        status, out = self.call("PreviewSchedule", {"ScheduleExpression": "cron(0 0 1 1 ? 2020)"})
        self.assertEqual((status, out["FireTimes"]), (200, []))
        status, out = self.call("PreviewSchedule", {"ScheduleExpression": "rate(1 minute)", "Count": 101})
        self.assertEqual(status, 400)
        status, out = self.call("AdvanceClock", {"Seconds": 1, "To": T0})
        self.assertEqual(status, 400)
        # schedules only on the default bus, as AWS
        self.ok("events", "create-event-bus", "--name", "other")
        rc, _, err = self.srv.aws("events", "put-rule", "--name", "x", "--event-bus-name", "other",
                                  "--schedule-expression", "rate(1 minute)")
        self.assertEqual(rc, 254)
        self.assertIn("ScheduleExpression is supported only on the default event bus.", err)


class RealClock(unittest.TestCase):
    def test_advance_needs_manual_clock(self):
        srv = drain(Server().start())
        try:
            status, out = raw(srv.url, "AdvanceClock", {"Seconds": 60})
            self.assertEqual(status, 400)
            self.assertEqual(out["__type"], "ValidationException")
            self.assertIn("--clock manual", out["message"])
            rc, _, _ = srv.aws("events", "put-rule", "--name", "r", "--schedule-expression", "cron(0 8 ? * MON#1 *)")
            self.assertEqual(rc, 0)
            status, out = raw(srv.url, "DescribeRule", {"Name": "r"}, service="events", prefix="AWSEvents")
            self.assertEqual(status, 200, out)
            self.assertGreater(out["NextFireTime"], time.time())
            self.assertEqual(time.strftime("%a %H:%M:%S", time.gmtime(out["NextFireTime"])), "Mon 08:00:00")
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
