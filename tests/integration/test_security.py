"""test_security.py — llmq against the broker's SASL_SSL listener (deploy/local/kafka.sh
with LLMQ_KAFKA_SASL=1: SCRAM-SHA-512 over TLS from a CA of its own, the StandardAuthorizer;
tests/run.sh starts the suite's broker so). The worker, the CLI (submit, tail, batch) and
the Python client run jobs through it; a wrong password and a client without TLS are
refused within a bounded time; a worker whose user may not write the dead-letter topic
loses no job, and /readyz names the topic. The worker takes its secrets from a properties
file, the environment and "@/path" values, and shows none of them (log, --check-config, the
llama-server child's command line); a job's reply_to cannot name the worker's own topics,
and one the broker refuses is given up without holding its partition. Where the C code
still falls short of issue 11, the test says so as a strict xfail naming the change."""
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import msgpack
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient,
                                   ResourcePatternType, ResourceType)

from fault_tools import read_topic, wait_committed
from llmq_harness import ROOT, Replies, job
from test_metrics import get, metrics_url

sys.path.insert(0, str(ROOT / "schemas" / "python"))  # no install step needed

import llmq  # noqa: E402
from llmq.errors import LlmqError  # noqa: E402

KAFKA_SH = ROOT / "deploy/local/kafka.sh"
HINT = "start the broker with its SASL_SSL listener: kafka.sh stop && LLMQ_KAFKA_SASL=1 kafka.sh start"


class Secured:
    """The SASL_SSL listener of the suite's broker: its address and the client properties
    (librdkafka names) that kafka.sh wrote for SCRAM user llmq."""

    def __init__(self, props):
        self.props = dict(props)
        self.bootstrap = self.props.pop("bootstrap.servers")

    def client_props(self, **changes):
        return {**self.props, **changes}

    def worker_settings(self, **changes):
        """start_worker overrides: brokers and kafka.properties ('_' for '.')."""
        body = " ".join(f'{k.replace(".", "_")} = "{v}";'
                        for k, v in self.client_props(**changes).items())
        return {"kafka.brokers": f'"{self.bootstrap}"', "kafka.properties": f"{{ {body} }}"}

    def worker_secret_sources(self, tmp_path):
        """start_worker overrides that keep the password out of the config file: the
        properties file holds every property but sasl.password, which comes from
        LLMQ_KAFKA_PROP_SASL_PASSWORD as "@" + a file holding it (a mounted Secret)."""
        secret = tmp_path / "sasl-password"
        secret.write_text(self.props["sasl.password"] + "\n")
        props = tmp_path / "client.properties"
        props.write_text("# librdkafka names\n" + "".join(
            f"{k} = {v}\n" for k, v in self.props.items() if k != "sasl.password"))
        return {"kafka.brokers": f'"{self.bootstrap}"',
                "kafka.properties_file": f'"{props}"',
                "_env": {"LLMQ_KAFKA_PROP_SASL_PASSWORD": f"@{secret}"}}

    def cli_args(self, omit=(), **changes):
        # -X for each property; one in `omit` comes another way (LLMQ_KAFKA_PROP_*).
        args = ["-b", self.bootstrap]
        for k, v in self.client_props(**changes).items():
            if k not in omit:
                args += ["-X", f"{k}={v}"]
        return args


def read_properties(path):
    props = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


@pytest.fixture(scope="session")
def secured(kafka):
    out = subprocess.run(["bash", str(KAFKA_SH), "sasl-info"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, f"kafka.sh sasl-info failed: {out.stderr}"
    info = dict(line.split("=", 1) for line in out.stdout.split())
    path = pathlib.Path(info["client_properties"])
    if not path.exists():
        pytest.fail(f"{path} missing: the broker has no SASL_SSL listener; {HINT}", pytrace=False)
    s = Secured(read_properties(path))
    try:
        md = AdminClient({"bootstrap.servers": s.bootstrap, **s.props}).list_topics(timeout=15)
    except KafkaException as e:
        pytest.fail(f"no SASL_SSL listener answers on {s.bootstrap} ({e}); {HINT}", pytrace=False)
    plain = kafka.admin.list_topics(timeout=10)
    assert md.cluster_id == plain.cluster_id, (
        f"{s.bootstrap} is another cluster than {kafka.bootstrap}: set LLMQ_STATE and the "
        "LLMQ_KAFKA_*_PORT variables of the broker the suite uses")
    return s


@pytest.fixture
def llmq_cli(build_dir, topics):
    def run(*args, connection, input=None, timeout=120, env=None):
        command = [str(build_dir / "llmq"), *connection, "--jobs-topic", topics["jobs"],
                   "--reply-topic", topics["replies"], *args]
        return subprocess.run(command, input=input, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
    return run


def timed(fn):
    t0 = time.monotonic()
    result = fn()
    return result, time.monotonic() - t0


def test_jobs_complete_over_sasl_ssl(secured, topics, start_worker, llmq_cli, tmp_path):
    start_worker(**secured.worker_settings())

    with llmq.Client(secured.bootstrap, jobs_topic=topics["jobs"], reply_topic=topics["replies"],
                     **secured.client_props()) as client:
        done = client.submit("Once upon a time", max_tokens=8).result(timeout=60)
        assert done.usage.completion_tokens == 8 and done.worker

    conn = secured.cli_args()
    # The password off the command line: LLMQ_KAFKA_PROP_SASL_PASSWORD=@file.
    secret = tmp_path / "sasl-password"
    secret.write_text(secured.props["sasl.password"] + "\n")
    no_password = secured.cli_args(omit=("sasl.password",))
    r = llmq_cli("submit", "--id", "sec-submit", "--max-tokens", "6", "--timeout", "60", "Hello",
                 connection=no_password,
                 env={"LLMQ_KAFKA_PROP_SASL_PASSWORD": f"@{secret}"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "submit printed no text"

    lines = tmp_path / "jobs.jsonl"
    lines.write_text("".join(json.dumps({"prompt": f"Job {i}", "max_tokens": 4}) + "\n"
                             for i in range(3)))
    r = llmq_cli("batch", "--timeout", "60", str(lines), connection=conn)
    assert r.returncode == 0, r.stderr
    results = [json.loads(x) for x in r.stdout.splitlines()]
    assert sorted(x["line"] for x in results) == [1, 2, 3]
    assert {x["status"] for x in results} == {"done"}, results

    r = llmq_cli("tail", "--from-beginning", "--type", "done", "--id", "sec-submit", "--count", "1",
                 connection=conn, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("sec-submit "), r.stdout


def test_client_without_tls_is_refused(secured, topics, llmq_cli):
    no_tls = secured.client_props(**{"security.protocol": "SASL_PLAINTEXT"})
    for props in (no_tls, {}):  # SASL without TLS; neither
        admin = AdminClient({"bootstrap.servers": secured.bootstrap, **props})
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=3)
    r, took = timed(lambda: llmq_cli("submit", "--timeout", "5", "Hello",
                                     connection=secured.cli_args(**no_tls)))
    assert r.returncode == 4 and took < 15, (r.returncode, took, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_wrong_password_cli_and_python_fail_within_bounds(secured, topics, llmq_cli):
    conn = secured.cli_args(**{"sasl.password": "wrong"})
    for command in (["submit", "--timeout", "5", "Hello"], ["batch", "--timeout", "5", "-"]):
        r, took = timed(lambda: llmq_cli(*command, connection=conn, input='{"prompt": "x"}\n'))
        assert r.returncode == 4 and took < 15, (command, r.returncode, took, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    t0 = time.monotonic()
    with pytest.raises(LlmqError) as e:
        llmq.Client(secured.bootstrap, jobs_topic=topics["jobs"], reply_topic=topics["replies"],
                    **secured.client_props(**{"sasl.password": "wrong"}))
    assert time.monotonic() - t0 < 8
    assert "refused the connection" in str(e.value) and "authentication" in str(e.value).lower()
    assert "\n" not in str(e.value)


REFUSED_CLIENT = """
import sys, time
sys.path.insert(0, sys.argv[1])
import llmq
props = dict(arg.split("=", 1) for arg in sys.argv[3:])
try:
    llmq.Client(sys.argv[2], jobs_topic="j", reply_topic="r", **props)
except llmq.errors.LlmqError as e:
    kept = e  # its traceback holds the half-made client, as pytest.raises would
    print("RAISED", file=sys.stderr, flush=True)
time.sleep(3)
"""


def test_a_refused_python_client_leaves_nothing_connecting(secured):
    """A Client whose broker refused it lets its producer go at once: kept
    alive by the exception's traceback, it went on retrying the broker (one
    refused SASL handshake every 0.5 s, logged) until a GC pass, through the
    tests that came after."""
    props = [f"{k}={v}" for k, v in secured.client_props(**{"sasl.password": "wrong"}).items()]
    r = subprocess.run([sys.executable, "-c", REFUSED_CLIENT, str(ROOT / "schemas" / "python"),
                        secured.bootstrap, *props], capture_output=True, text=True, timeout=60)
    assert "RAISED" in r.stderr, r.stderr
    after = r.stderr.split("RAISED", 1)[1]
    assert "FAIL" not in after, f"the refused client still connects:{after}"


@pytest.mark.parametrize("command", [["tail", "--count", "1"], ["submit", "hello"]])
def test_wrong_password_cli_names_authentication(secured, topics, llmq_cli, command):
    """A refused login ends any command at once (exit 4) with one line naming
    it, not after --connect-timeout; the password is not echoed."""
    conn = secured.cli_args(**{"sasl.password": "wrong"})
    try:
        r, took = timed(lambda: llmq_cli(*command, connection=conn, timeout=12))
    except subprocess.TimeoutExpired:
        pytest.fail(f"llmq {command[0]} still runs 12 s after its authentication failed")
    assert r.returncode == 4
    assert "authentication" in r.stderr.lower(), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "wrong" not in r.stderr
    assert took < 5, took


def test_wrong_password_worker_exits(secured, start_worker):
    """An authentication failure before the first assignment is a configuration error:
    one line from the worker naming it, exit 3 (README, exit codes), within 15 s."""
    w = start_worker(wait_ready=False, **secured.worker_settings(**{"sasl.password": "wrong"}))
    try:
        rc = w.wait_exit(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("llmq-worker still runs 15 s after its authentication failed")
    assert rc == 3, w.log_text()[-2000:]
    own = [x for x in w.log_text().splitlines() if " worker " in x and "authentication" in x]
    assert len(own) == 1, w.log_text()[-2000:]
    assert "SASL authentication failed" in own[0] and "exiting with code 3" in own[0]
    assert "wrong" not in w.log_text()


def set_dead_letter_acl(kafka, topic, create):
    """User llmq may describe the topic but not write to it (the plain listener is a super user)."""
    set_write_denied(kafka, topic, create)


def set_write_denied(kafka, topic, create):
    kind = AclBinding if create else AclBindingFilter
    acls = [kind(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:llmq", "*", op, perm)
            for op, perm in ((AclOperation.DESCRIBE, AclPermissionType.ALLOW),
                             (AclOperation.WRITE, AclPermissionType.DENY))]
    if create:
        futures = kafka.admin.create_acls(acls, request_timeout=10)
    else:
        futures = kafka.admin.delete_acls(acls, request_timeout=10)
    for f in futures.values():
        f.result()


def test_dead_letter_topic_denied_loses_no_job(secured, kafka, topics, start_worker):
    set_dead_letter_acl(kafka, topics["dead"], create=True)
    try:
        w = start_worker(**secured.worker_settings(), **{"metrics.listen": '"127.0.0.1:0"',
                                                         "llama.slots": "1"})
        base = metrics_url(w)
        replies = Replies(kafka, topics["replies"])
        bad_key = "sec-bad-1"
        kafka.producer.produce(topics["jobs"], b"\xc1 not msgpack", key=bad_key, partition=0)
        good = job("After the bad one", max_tokens=4)
        kafka.producer.produce(topics["jobs"], msgpack.packb(good), key=good["id"], partition=0)
        assert kafka.producer.flush(30) == 0
        replies.wait_terminal([good["id"]], timeout=60)
        time.sleep(2)  # let a dead-letter attempt fail
        status, _, readyz = get(base + "/readyz")
    finally:
        set_dead_letter_acl(kafka, topics["dead"], create=False)
    copies = read_topic(kafka.bootstrap, topics["dead"], 1, timeout=60)
    assert len(copies) == 1, "the invalid job's dead-letter copy never arrived"
    wait_committed(kafka.bootstrap, f"g-{topics['jobs']}", topics["jobs"], {0: 2}, timeout=30)
    replies.close()
    assert status == 503, (status, readyz)
    assert topics["dead"] in readyz and "Topic authorization failed" in readyz, readyz
    deadline = time.monotonic() + 20  # ready again once the copy is acknowledged
    while get(base + "/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert get(base + "/readyz")[0] == 200, get(base + "/readyz")


def test_worker_secrets_from_file_and_env(secured, topics, start_worker, kafka, tmp_path):
    """No secret in the config file: kafka.properties_file + LLMQ_KAFKA_PROP_SASL_PASSWORD=@file
    (issue 11 point 3); the password shows in no log line nor in --check-config."""
    settings = secured.worker_secret_sources(tmp_path)
    replies = Replies(kafka, topics["replies"])
    w = start_worker(**settings)
    assert secured.props["sasl.password"] not in w.cfg_path.read_text()
    j = job("Secrets from files", max_tokens=4)
    kafka.producer.produce(topics["jobs"], msgpack.packb(j), key=j["id"])
    assert kafka.producer.flush(30) == 0
    assert replies.wait_terminal([j["id"]], timeout=60)[j["id"]]["type"] == "done"
    replies.close()
    assert secured.props["sasl.password"] not in w.log_text()
    check = subprocess.run([str(w.build_dir / "llmq-worker"), "-c", str(w.cfg_path),
                            "--check-config"], capture_output=True, text=True, timeout=30,
                           env={**os.environ, **settings["_env"]})
    assert check.returncode == 0, check.stderr
    assert 'sasl_password = "***";' in check.stdout, check.stdout
    assert secured.props["sasl.password"] not in check.stdout + check.stderr


def test_api_key_not_on_the_child_command_line(start_worker):
    """The spawned llama-server gets its API key as LLAMA_API_KEY, never in argv, which
    any local user reads in /proc/PID/cmdline (issue 11 point 4)."""
    w = start_worker()
    pid = int(re.search(r"started llama-server pid (\d+)", w.log_text()).group(1))
    argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    env = dict(x.split(b"=", 1) for x in pathlib.Path(f"/proc/{pid}/environ").read_bytes()
               .split(b"\0") if b"=" in x)
    key = env.get(b"LLAMA_API_KEY", b"")
    assert re.fullmatch(rb"[0-9a-f]{32}", key), "the child has no LLAMA_API_KEY"
    assert b"--api-key" not in argv and key not in b" ".join(argv), argv
    assert key.decode() not in w.log_text()


def test_reply_to_cannot_name_the_fleet(kafka, topics, start_worker):
    """reply_to = the jobs topic under an allowlist entry covering it ("<prefix>.*") is
    denied like any topic off the allowlist (so no reply, a dead-letter copy with
    reply_to_denied, the offset done), and nothing is written to the jobs topic; the same
    for the dead-letter and metrics topics and "__*" (issue 11 point 5)."""
    prefix = topics["jobs"].split(".")[0]
    start_worker(**{"kafka.reply_allowlist": f'["{prefix}.*"]'})
    targets = (topics["jobs"], topics["dead"], topics["metrics"], "__consumer_offsets")
    for target in targets:
        j = job("Loop", max_tokens=2, reply_to=target)
        kafka.producer.produce(topics["jobs"], msgpack.packb(j), key=j["id"], partition=0)
    assert kafka.producer.flush(30) == 0
    wait_committed(kafka.bootstrap, f"g-{topics['jobs']}", topics["jobs"], {0: 4}, timeout=60)
    dead = read_topic(kafka.bootstrap, topics["dead"], len(targets), timeout=30)
    codes = [dict(m.headers())["llmq-error-code"].decode() for m in dead]
    assert codes == ["reply_to_denied"] * len(targets), codes
    assert count_messages(kafka, topics["jobs"], settle=3) == 4, "a reply went to the jobs topic"


def count_messages(kafka, topic, settle):
    """Every message of every partition of `topic`, until none came for `settle` s."""
    c = kafka.consumer(topic)
    n, quiet_since = 0, time.monotonic()
    while time.monotonic() - quiet_since < settle:
        m = c.poll(0.2)
        if m is not None and not m.error():
            n, quiet_since = n + 1, time.monotonic()
    c.close()
    return n


def test_reply_to_refused_by_the_broker_is_given_up(secured, kafka, topics, start_worker):
    """A reply_to under the allowlist that the broker refuses (TOPIC_AUTHORIZATION_FAILED)
    is given up with a log line and the job's offset is done: it cannot hold the partition."""
    theirs = "allowed." + topics["jobs"].split(".")[0]
    kafka.create_topic(theirs, 1)
    set_write_denied(kafka, theirs, create=True)
    try:
        replies = Replies(kafka, topics["replies"])
        w = start_worker(**secured.worker_settings(), **{"llama.slots": "1"})
        hostile = job("Refused", max_tokens=2, reply_to=theirs)
        after = job("After it", max_tokens=2)
        for j in (hostile, after):
            kafka.producer.produce(topics["jobs"], msgpack.packb(j), key=j["id"], partition=0)
        assert kafka.producer.flush(30) == 0
        replies.wait_terminal([after["id"]], timeout=60)
        wait_committed(kafka.bootstrap, f"g-{topics['jobs']}", topics["jobs"], {0: 2}, timeout=30)
        w.wait_log(f"job {hostile['id']}: the broker will never take its message to {theirs}",
                   timeout=10)
        replies.close()
    finally:
        set_write_denied(kafka, theirs, create=False)
