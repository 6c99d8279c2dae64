"""Starts a real pipebridge server for end-to-end tests and drives it with
real clients: Debian's AWS CLI v2 (/usr/bin/aws) and boto3."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config

PB = os.environ.get("PIPEBRIDGE", "build/pipebridge")
AWS = "/usr/bin/aws"
REGION = "us-east-1"


class Server:
    """A pipebridge server on a free loopback port with its own data dir."""

    def __init__(self, data_dir=None, extra=()):
        self.owned = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="pb-e2e-")
        self.extra = list(extra)
        self.proc = None
        self.port = None
        self.log = []

    def start(self, timeout=30):
        self.proc = subprocess.Popen(
            [PB, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir] + self.extra,
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError("server exited: " + "".join(self.log))
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return self
        raise RuntimeError("server did not start: " + "".join(self.log))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self, sig=signal.SIGTERM):
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.log.append(self.proc.stderr.read() or "")
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        if self.owned:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def aws(self, *args, secret="test", key="test"):
        """Runs the AWS CLI; returns (exit code, parsed JSON or None, stderr)."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION=REGION, AWS_PAGER="", AWS_MAX_ATTEMPTS="1",
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        p = subprocess.run([AWS, "--endpoint-url", self.url, "--output", "json"] + list(args),
                           env=env, capture_output=True, text=True, timeout=60)
        out = json.loads(p.stdout) if p.stdout.strip() else None
        return p.returncode, out, p.stderr

    def boto(self, service="events", secret="test"):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="test", aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def drain(srv):
    """Reads the server's log in the background so a full pipe never blocks it."""
    def run(proc):
        try:
            for line in proc.stderr:
                srv.log.append(line)
        except (ValueError, OSError):  # closed by Server.stop
            pass
    threading.Thread(target=run, args=(srv.proc,), daemon=True).start()
    return srv


def start(srv):
    """Starts srv and drains its log; returns it."""
    return drain(srv.start())


def raw(url, op, body, service="pipebridge", prefix="Pipebridge", timeout=30):
    """A request for `prefix.op` signed by botocore for `service`, answered as
    (status, JSON body): what the server itself says, with no client-side
    validation and with members the CLI's model does not know. body is a dict
    (sent as JSON) or bytes (sent as they are)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = botocore.awsrequest.AWSRequest(method="POST", url=url + "/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": prefix + "." + op})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"), service, REGION).add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, headers=dict(p.headers), method="POST")
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class ServerTest(unittest.TestCase):
    """A test case whose setUp sets self.srv (a started Server), removed after
    each test, with the AWS CLI called through ok() and fails()."""

    def tearDown(self):
        self.srv.cleanup()

    def ok(self, *args):
        """Runs the AWS CLI, which must succeed; returns its JSON output."""
        rc, out, err = self.srv.aws(*args)
        self.assertEqual(rc, 0, "aws %s: %s" % (" ".join(args), err))
        return out

    def fails(self, code, *args, secret="test"):
        """Runs the AWS CLI, which must fail with the service error `code`; returns stderr."""
        rc, out, err = self.srv.aws(*args, secret=secret)
        self.assertEqual(rc, 254, err)
        self.assertIn("(%s)" % code, err)
        return err
