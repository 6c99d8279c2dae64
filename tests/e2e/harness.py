"""Starts a real pipebridge server for end-to-end tests and drives it with
real clients: Debian's AWS CLI v2 (/usr/bin/aws) and boto3."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import boto3
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
