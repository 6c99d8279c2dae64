#!/usr/bin/python3
"""Cross-checks src/api/sigv4.c against independent SigV4 implementations.
Run by tests/unit/test_sigv4.c (through popen); not meant to be run by hand,
though it can be.

  sigv4_crosscheck.py botocore N SEED   print N requests signed by botocore
  sigv4_crosscheck.py verify FILE       verify requests signed by C with
                                        ../shared/tools/sigv4_check.py

Both directions use one record per line, tab-separated fields, each the hex
of its UTF-8 (or raw) bytes, so nothing needs escaping:

  method  path  query  body  now  access_key  secret  region  service  (name  value)*

`now` is the decimal epoch second the verifier should use. Exit status 0 when
everything went well; 2 (with a message on stderr) when botocore or the
reference verifier cannot be imported, so the C test fails loudly.
"""
import datetime
import hashlib
import os
import random
import string
import sys
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_TOOLS = os.path.join(os.environ.get("PB_SHARED_DIR") or os.path.join(HERE, "..", "..", "..", "shared"),
                            "tools")


def enc(v):
    if isinstance(v, str):
        v = v.encode("utf-8")
    return v.hex()


def dec(h):
    return bytes.fromhex(h)


def write_record(out, method, path, query, body, now, akid, secret, region, service, headers):
    fields = [method, path, query, body, str(now), akid, secret, region, service]
    for name, value in headers:
        fields += [name, value]
    out.write("\t".join(enc(f) for f in fields) + "\n")


def read_record(line):
    f = line.rstrip("\n").split("\t")
    if len(f) < 9 or len(f) % 2 == 0:
        raise ValueError(f"bad record with {len(f)} fields")
    s = [dec(x) for x in f]
    text = [x.decode("utf-8") for x in s[:3]]
    rest = [x.decode("utf-8") for x in s[4:9]]
    headers = [(s[i].decode("utf-8"), s[i + 1].decode("utf-8")) for i in range(9, len(s), 2)]
    return dict(method=text[0], path=text[1], query=text[2], body=s[3], now=int(rest[0]), access_key=rest[1],
                secret=rest[2], region=rest[3], service=rest[4], headers=headers)


# ------------------------------------------------------ C-signed -> reference


def cmd_verify(path):
    try:
        sys.path.insert(0, SHARED_TOOLS)
        import sigv4_check
    except ImportError as e:
        sys.stderr.write(f"cannot import sigv4_check from {SHARED_TOOLS}: {e}\n")
        return 2
    n = bad = 0
    with open(path, encoding="ascii") as f:
        for i, line in enumerate(f):
            rec = read_record(line)
            target = rec["path"] + ("?" + rec["query"] if rec["query"] else "")
            r = sigv4_check.verify(rec["method"], target, rec["headers"], rec["body"],
                                   secret_for=lambda akid, rec=rec: rec["secret"] if akid == rec["access_key"] else None)
            n += 1
            if r["ok"]:
                print(f"ok {i}")
            else:
                bad += 1
                print(f"FAIL {i} {r['reason']}")
                for k in ("canonical_request", "string_to_sign"):
                    if k in r:
                        print(f"  {k}: {r[k]!r}")
    print(f"checked {n} failed {bad}")
    return 1 if bad else 0


# ------------------------------------------------------ botocore-signed -> C

REGIONS = ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1", "cn-north-1", "local", "xx-test-9"]
SERVICES = ["events", "sagemaker", "execute-api", "service"]
WORDS = ["alpha", "Beta", "gamma delta", "x=1;y=2", "application/x-amz-json-1.1", "AWSEvents.PutEvents",
         "SageMaker.StartPipelineExecution", "a,b", "\"quoted  value\"", "100"]


def rand_ws(rng):
    return "".join(rng.choice(" \t") for _ in range(rng.randint(1, 4)))


def rand_value(rng):
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
    v = rand_ws(rng).join(words) if rng.random() < 0.5 else " ".join(words)
    if rng.random() < 0.3:
        v = rand_ws(rng) + v
    if rng.random() < 0.3:
        v = v + rand_ws(rng)
    return v


def rand_case(rng, name):
    return "".join(c.upper() if rng.random() < 0.4 else c.lower() for c in name)


def rand_component(rng):
    """A query name or value already in canonical form: unreserved characters
    and %XX (uppercase) escapes of everything else."""
    out = []
    for _ in range(rng.randint(0, 8)):
        c = rng.choice(string.ascii_letters + string.digits + "-_.~ /=&+%é")
        for b in c.encode("utf-8"):
            ch = chr(b)
            if ch in string.ascii_letters + string.digits + "-_.~":
                out.append(ch)
            else:
                out.append("%%%02X" % b)
    return "".join(out)


def rand_path(rng):
    segs = ["a", "b", ".", "..", "", "x%20y", "~user", "-_.", "%C3%A9t%C3%A9", "p+q", "v1"]
    p = "/" + "/".join(rng.choice(segs) for _ in range(rng.randint(0, 5)))
    if rng.random() < 0.3:
        p += "/"
    return p


def fixed_clock(botocore_auth, when):
    """Makes botocore sign at `when` (naive UTC), whatever its version."""
    if hasattr(botocore_auth, "get_current_datetime"):
        botocore_auth.get_current_datetime = lambda *a, **k: when
        return

    class Fixed(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

        @classmethod
        def now(cls, tz=None):
            return when.replace(tzinfo=tz) if tz else when

    class Shim:
        pass

    shim = Shim()
    for k in dir(datetime):
        if not k.startswith("__"):
            setattr(shim, k, getattr(datetime, k))
    shim.datetime = Fixed
    botocore_auth.datetime = shim


def cmd_botocore(count, seed):
    try:
        import botocore.auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError as e:
        sys.stderr.write(f"botocore is not importable by {sys.executable}: {e} (install python3-boto3)\n")
        return 2
    rng = random.Random(seed)
    out = sys.stdout
    for _ in range(count):
        when = datetime.datetime(2000, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 35 * 365 * 86400))
        fixed_clock(botocore.auth, when)
        epoch = int((when - datetime.datetime(1970, 1, 1)).total_seconds())
        now = epoch + rng.randint(-900, 900)
        akid = "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
        secret = "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
        token = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(60)) if rng.random() < 0.3 else None
        region = rng.choice(REGIONS)
        service = rng.choice(SERVICES)
        scheme = rng.choice(["http", "https"])
        host = rng.choice(["localhost", "127.0.0.1", "events.example.com", "PipeBridge.Local"])
        port = rng.choice(["", ":80", ":443", ":4010", ":8080"])
        path = rand_path(rng)
        pairs = [f"{rand_component(rng)}={rand_component(rng)}" if rng.random() < 0.8 else rand_component(rng) or "k"
                 for _ in range(rng.choice([0, 0, 1, 2, 4]))]
        pairs = [p for p in pairs if p and p != "="]
        query = "&".join(pairs)
        url = f"{scheme}://{host}{port}{path}" + (f"?{query}" if query else "")
        if rng.random() < 0.5:
            body = ("{\"Entries\": [{\"Source\": \"%s\"}]}" % rng.choice(WORDS)).encode()
        else:
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        method = rng.choice(["POST", "POST", "GET", "PUT", "delete"])
        req = AWSRequest(method=method, url=url, data=body)
        if rng.random() < 0.3:
            req.headers["Host"] = rand_case(rng, host) + port
        req.headers[rand_case(rng, "content-type")] = "application/x-amz-json-1.1"
        req.headers[rand_case(rng, "x-amz-target")] = rng.choice(["AWSEvents.PutEvents", "SageMaker.ListPipelines"])
        for k in range(rng.randint(0, 4)):
            name = rand_case(rng, f"x-custom-{rng.randint(0, 3)}")
            req.headers[name] = rand_value(rng)  # appends: repeated names stay repeated
        if rng.random() < 0.5:
            req.headers["User-Agent"] = "Boto3/1.0 " + rand_value(rng)  # never signed by botocore
        if rng.random() < 0.3:
            req.headers["X-Amz-Content-SHA256"] = rng.choice(["UNSIGNED-PAYLOAD", hashlib.sha256(body).hexdigest()])
        botocore.auth.SigV4Auth(Credentials(akid, secret, token), service, region).add_auth(req)
        headers = list(req.headers.items())
        if not any(k.lower() == "host" for k, _ in headers):
            headers.append(("Host", botocore.auth._host_from_url(url)))
        # arrival order is free except among repeated names: shuffle by name, stably
        keys = {k.lower(): rng.random() for k, _ in headers}
        headers.sort(key=lambda h: keys[h[0].lower()])
        parts = urlsplit(url)
        write_record(out, method, parts.path, parts.query, body, now, akid, secret, region, service, headers)
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "botocore":
        return cmd_botocore(int(sys.argv[2]), int(sys.argv[3]))
    if len(sys.argv) == 3 and sys.argv[1] == "verify":
        return cmd_verify(sys.argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
