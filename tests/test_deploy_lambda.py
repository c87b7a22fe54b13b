"""The Lambda deployment, offline: the artefact `zappa package` builds, its handler, and a deploy cycle.

1. `zappa package` really runs, in a copy of the project, with HOME an empty folder, no AWS
   credentials, and every outbound HTTP call sent to a closed port on loopback. The zip must hold
   the catalogue and the spec schema, no secret, nothing compiled for another OS or Python, and
   fit Lambda's limits.
2. The zip's own `handler.lambda_handler` runs in a fresh interpreter that sees only the unzipped
   artefact and the AWS SDK (as Lambda provides it), with the function's environment. It answers
   API Gateway REST (v1) and HTTP API (v2) events for /health and /observe/observables, calling a
   stand-in AbuseIPDB on loopback, with tokens whose `aud` is the URL root Lambda sees,
   `https://<api-id>.execute-api.<region>.amazonaws.com/<stage>/abuseipdb`.
3. deploy -> update -> status -> undeploy through Zappa against moto in this process, as the IAM
   user and role of aws/HOWTO.md, and every AWS call Zappa made is allowed by
   aws/ZappaLambdaDeploymentPolicy.json.

The artefact is built with `.venv-deploy` when it exists (the README's deploy venv, Python of the
Lambda runtime; .ci/run makes it), else from this interpreter's own installed packages.
"""
from __future__ import annotations

import fnmatch
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from engine import load_spec, load_specs
from engine.commands.standin import StandInVendor, routes_from_examples
from engine.commands.tokens import mint_hs256

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = json.loads((ROOT / "zappa_settings.json").read_text())
AWS = ROOT / "aws"
DEPLOY_VENV = ROOT / ".venv-deploy"
API_HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
SECRET_KEY = "lambda-test-secret-0123456789abcdefghijklmnop"
LEAK_CANARY = "canary-secret-from-the-deployer-shell-8d1f0c"
VENDOR_KEY = "stand-in-abuseipdb-key"

ZIPPED_LIMIT = 50 * 1024 * 1024  # a zip uploaded directly to Lambda
UNZIPPED_LIMIT = 262_144_000  # function code and layers, unzipped
LAMBDA_GLIBC = {"python3.9": (2, 26), "python3.10": (2, 26), "python3.11": (2, 26),  # Amazon Linux 2
                "python3.12": (2, 34), "python3.13": (2, 34), "python3.14": (2, 34)}  # Amazon Linux 2023
ELF_MACHINE = {"x86_64": 62, "arm64": 183}
PROJECT_JUNK = shutil.ignore_patterns(".git", ".venv*", "__pycache__", ".pytest_cache", ".hypothesis",
                                      ".benchmarks", "build", "dist", "*.egg-info", "*.zip")


# -- building the artefact ------------------------------------------------------------------------

@dataclass
class Artefact:
    stage: str
    zip_path: Path
    task: Path  # the unzipped artefact, as /var/task
    python: str  # an interpreter of the same version as the packaged extension modules
    built_for: str  # that version as a Lambda runtime name
    seconds: float
    output: str = ""  # what `zappa package` printed


def closed_loopback_port() -> socket.socket:
    """A bound, never listening socket: connecting to its port is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def requirement_closure(project: str, extras: frozenset) -> list:
    """The installed distributions `pip install 'project[extras]'` needs, found by their metadata."""
    found, queue, seen = {}, [(project, extras)], set()
    while queue:
        name, wanted = queue.pop()
        if (canonicalize_name(name), wanted) in seen:
            continue
        seen.add((canonicalize_name(name), wanted))
        dist = metadata.distribution(name)
        found[canonicalize_name(name)] = dist
        for line in dist.requires or ():
            requirement = Requirement(line)
            if requirement.marker and not any(requirement.marker.evaluate({"extra": extra})
                                              for extra in (wanted or {""})):
                continue
            queue.append((requirement.name, frozenset(requirement.extras)))
    return list(found.values())


def lean_deploy_venv(target: Path) -> Path:
    """A venv holding what `pip install -e '.[deploy]'` would, copied from this interpreter's packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    site = target / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    for dist in requirement_closure("relay-engine", frozenset({"deploy"})):
        for file in dist.files or ():
            source = Path(dist.locate_file(file))
            if ".." in file.parts or not source.is_file():  # console scripts live outside site-packages
                continue
            (site / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, site / file)
    return target


def deploy_toolchain(scratch: Path) -> tuple[list, Path, str]:
    """(zappa command, venv, its python): the README's deploy venv, else a lean one made here."""
    if (DEPLOY_VENV / "bin" / "zappa").exists():
        return [str(DEPLOY_VENV / "bin" / "zappa")], DEPLOY_VENV, str(DEPLOY_VENV / "bin" / "python")
    venv = scratch / "deploy-venv"
    if not venv.exists():
        lean_deploy_venv(venv)
    return [str(Path(sys.executable).parent / "zappa")], venv, sys.executable


def zappa_package(project: Path, stage: str, scratch: Path, zip_path: Path) -> subprocess.CompletedProcess:
    """`zappa package STAGE -o ZIP` in `project`, offline, as a deployer's shell would run it."""
    zappa, venv, _ = deploy_toolchain(scratch)
    home, tmp = scratch / "home", scratch / f"tmp-{stage}"
    for folder in (home, tmp, zip_path.parent):
        folder.mkdir(exist_ok=True)
    blackhole = closed_loopback_port()
    proxy = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp), "LANG": "C.UTF-8",
           "VIRTUAL_ENV": str(venv), "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy,
           "https_proxy": proxy, "NO_PROXY": "", "SECRET_KEY": LEAK_CANARY}
    try:
        return subprocess.run(zappa + ["package", stage, "-o", str(zip_path)], cwd=project, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        blackhole.close()


def build(stage: str, scratch: Path) -> Artefact:
    project = scratch / "project"
    if not project.exists():
        shutil.copytree(ROOT, project, ignore=PROJECT_JUNK)
    _, _, python = deploy_toolchain(scratch)
    out = scratch / "out"
    zip_path = out / f"relay-{stage}.zip"
    started = time.monotonic()
    done = zappa_package(project, stage, scratch, zip_path)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert "relay lint: vendors/ is clean" in done.stdout + done.stderr  # the prebuild hook ran
    task = out / f"task-{stage}"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task)
    version = subprocess.run([python, "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return Artefact(stage, zip_path, task, python, version, seconds, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="module")
def artefact(scratch):
    built = build("dev", scratch)
    print(f"\nzappa package dev: {built.seconds:.1f} s, {built.zip_path.stat().st_size / 2**20:.1f} MiB zipped, "
          f"built with {built.built_for}")
    return built


# -- 1. what the zip holds --------------------------------------------------------------------------

def test_zappa_refuses_to_package_a_catalogue_with_a_broken_spec(scratch):
    """zappa_settings.json's prebuild_script lints vendors/ before anything is built."""
    project = scratch / "broken-project"
    shutil.copytree(ROOT, project, ignore=PROJECT_JUNK)
    spec = project / "vendors" / "shodan.yaml"
    spec.write_text(spec.read_text().replace("observable_types:", "observable_typos:"))
    zip_path = scratch / "out-broken" / "relay-dev.zip"
    done = zappa_package(project, "dev", scratch, zip_path)
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert "vendors/shodan.yaml:" in said and "unknown key 'observable_typos'" in said
    assert "fix them before deploying (nothing was built)" in said
    assert not zip_path.exists()


def test_the_artefact_holds_the_catalogue_the_schema_and_the_entry_points(artefact):
    for path in [*sorted((ROOT / "vendors").rglob("*")), *sorted((ROOT / "engine" / "schema").glob("*.json"))]:
        if path.is_file():
            packaged = artefact.task / path.relative_to(ROOT)
            assert packaged.is_file(), f"{path.relative_to(ROOT)} is not in the zip"
            assert packaged.read_bytes() == path.read_bytes()
    for entry in ("handler.py", "zappa_settings.py", "engine/wsgi.py", "engine/serving/app.py"):
        assert (artefact.task / entry).is_file(), entry
    assert load_specs(artefact.task / "vendors").keys() == load_specs(ROOT / "vendors").keys()
    # Neither project clutter nor what the Lambda runtime already has
    for absent in ("tests", "docs", "aws", ".ci", ".git", ".venv", ".venv-deploy", "zappa_settings.json", "benchmarks", "bench",
                   "boto3", "botocore", "s3transfer", "troposphere"):
        assert not (artefact.task / absent).exists(), absent


def test_the_artefact_carries_nothing_of_the_build_machine(artefact):
    """No editable-install finder or .pth (an absolute path of the deployer's checkout), no bytecode
    of another Python, and no build path in the relay's own files or its packed spec cache."""
    with zipfile.ZipFile(artefact.zip_path) as archive:
        names = archive.namelist()
        ours = [name for name in names if name.split("/")[0] in ("engine", "vendors", "spec-cache")
                or name in ("handler.py", "zappa_settings.py")]
        for name in ours:
            content = archive.read(name)
            for path in (str(ROOT), str(artefact.task.parent.parent)):
                assert path.encode() not in content, f"{name} holds the build path {path}"
    assert not [name for name in names if "__editable__" in name or name.endswith(".pth")]
    assert not [name for name in names if name.startswith("relay_engine-")]
    tags = {re.search(r"\.(cpython-\d+)\.pyc$", name).group(1) for name in names if name.endswith(".pyc")}
    assert tags <= {"cpython-" + artefact.built_for[6:].replace(".", "")}


def test_the_artefact_carries_no_secret(artefact):
    settings = {}
    exec((artefact.task / "zappa_settings.py").read_text(), settings)  # Zappa's generated settings module
    assert "SECRET_KEY" not in settings["ENVIRONMENT_VARIABLES"]
    assert settings["API_STAGE"] == "dev" and settings["APP_MODULE"] == "engine.wsgi"
    with zipfile.ZipFile(artefact.zip_path) as archive:
        for info in archive.infolist():
            content = archive.read(info)
            assert LEAK_CANARY.encode() not in content, f"the deployer's SECRET_KEY leaked into {info.filename}"
            assert not re.search(rb"AKIA[0-9A-Z]{16}", content), f"an AWS access key id in {info.filename}"
        names = archive.namelist()
    assert not [name for name in names if Path(name).name in ("credentials", ".env", "module_type.json")]


def test_the_artefact_fits_lambda_limits(artefact):
    with zipfile.ZipFile(artefact.zip_path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    zipped = artefact.zip_path.stat().st_size
    print(f"\nartefact: {zipped / 2**20:.1f} MiB zipped, {unzipped / 2**20:.1f} MiB unzipped")
    assert zipped < ZIPPED_LIMIT
    assert unzipped < UNZIPPED_LIMIT


def compiled_files(task: Path) -> list:
    return [path for path in task.rglob("*.so*") if path.is_file()]


def test_compiled_code_runs_on_the_runtime_os(artefact):
    """The cryptography trap: a wheel built for a newer glibc than the runtime's fails at import."""
    runtime = SETTINGS["dev"]["runtime"]
    machine = ELF_MACHINE[SETTINGS["dev"].get("architecture", "x86_64")]
    ceiling = LAMBDA_GLIBC[runtime]
    assert compiled_files(artefact.task), "no compiled module at all: the scan looks in the wrong place"
    for path in compiled_files(artefact.task):
        data = path.read_bytes()
        assert data[:4] == b"\x7fELF", f"{path.name} is not a Linux shared object"
        assert int.from_bytes(data[18:20], "little") == machine, f"{path.name} is built for another CPU"
        needed = max([(int(major), int(minor)) for major, minor in re.findall(rb"GLIBC_(\d+)\.(\d+)", data)],
                     default=(0, 0))
        assert needed <= ceiling, (f"{path.relative_to(artefact.task)} needs glibc {needed[0]}.{needed[1]}; "
                                   f"{runtime} has {ceiling[0]}.{ceiling[1]}")


def test_extension_modules_are_built_for_the_runtime_python(artefact):
    runtime = SETTINGS["dev"]["runtime"]
    if artefact.built_for != runtime:
        pytest.skip(f"built with {artefact.built_for}, not {runtime}: make the README's .venv-deploy "
                    f"(python{runtime[6:]}) to build the artefact that would be uploaded")
    tag = "cpython-" + runtime[6:].replace(".", "")
    for path in compiled_files(artefact.task):
        found = re.search(r"\.cpython-(\d+)-", path.name)
        assert found is None or path.name.count(tag), f"{path.name} is not for {runtime}"


def test_the_artefact_carries_bytecode_for_the_runtime_python(artefact, scratch):
    """Zappa leaves __pycache__ out and Lambda cannot write /var/task: without bytecode in the zip,
    every cold start would compile Flask, requests, PyJWT and the engine from source again."""
    runtime = SETTINGS["dev"]["runtime"]
    with zipfile.ZipFile(artefact.zip_path) as archive:
        names = set(archive.namelist())
        if artefact.built_for != runtime:  # bytecode of another Python would be dead weight
            assert not [name for name in names if name.endswith(".pyc")]
            assert f"bytecode: not added (this is {artefact.built_for}; the function runs {runtime})" in artefact.output
            return
        fresh = scratch / "fresh-task"  # unpacked again: the handler tests may have run in artefact.task
        shutil.rmtree(fresh, ignore_errors=True)
        archive.extractall(fresh)
    tag = "cpython-" + runtime[6:].replace(".", "")
    for package in ("engine", "flask", "werkzeug", "requests", "urllib3", "jwt"):
        sources = [name for name in names if name.startswith(package + "/") and name.endswith(".py")]
        assert sources
        missing = [name for name in sources
                   if f"{name.rsplit('/', 1)[0]}/__pycache__/{Path(name).stem}.{tag}.pyc" not in names]
        assert not missing, f"no bytecode for {missing[:5]}"
    # A fresh interpreter, unable to write bytecode as on Lambda, compiles none of it from source.
    done = subprocess.run([artefact.python, "-S", "-v", "-c", "import flask, requests, jwt, engine.serving.app"],
                          cwd=fresh, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(fresh),
                                          "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    from_source = re.findall(rf"# code object from ({re.escape(str(fresh))}\S*\.py)$", done.stderr, re.MULTILINE)
    from_bytecode = re.findall(rf"# code object from '{re.escape(str(fresh))}\S*\.pyc'", done.stderr)
    assert not from_source, f"compiled from source: {from_source[:5]}"
    assert len(from_bytecode) > 100


# -- 2. the artefact's handler, in a fresh interpreter ------------------------------------------------

DRIVER = r"""
import json, sys, time
started = time.perf_counter()
import handler  # the zip's entry point: what Lambda imports as handler.lambda_handler
imported = time.perf_counter()

class Context:  # the few attributes of Lambda's context object that Zappa reads
    function_name = "tr-relay-engine"
    aws_request_id = "offline-test"
    memory_limit_in_mb = "512"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tr-relay-engine"
    def get_remaining_time_in_millis(self):
        return 30000

answers = [handler.lambda_handler(event, Context()) for event in json.load(sys.stdin)]
print("ANSWERS " + json.dumps({"answers": answers, "import_seconds": imported - started,
                                "seconds": time.perf_counter() - started,
                                "compiled_specs": "engine.spec.pipeline" in sys.modules}))
"""


QUERY_TOKEN = "eyJhbGciOiJIUzI1NiJ9.token-sent-in-the-query"


def rest_api_event(method: str, path: str, stage: str, body=None, headers=None, query=None) -> dict:
    """What API Gateway REST (v1) sends for https://<API_HOST>/<stage><path>."""
    headers = {"Host": API_HOST, "Content-Type": "application/json", "X-Forwarded-Proto": "https",
               "X-Forwarded-For": "198.51.100.7, 130.176.0.1", **(headers or {})}
    return {"resource": "/{proxy+}", "path": path, "httpMethod": method, "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": query, "multiValueQueryStringParameters":
                {name: [value] for name, value in query.items()} if query else None,
            "pathParameters": {"proxy": path.lstrip("/")}, "stageVariables": None,
            "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": method, "path": f"/{stage}{path}",
                               "stage": stage, "domainName": API_HOST, "requestId": "rest-request",
                               "identity": {"sourceIp": "198.51.100.7"}},
            "body": None if body is None else json.dumps(body), "isBase64Encoded": False}


def http_api_event(method: str, path: str, stage: str, body=None, headers=None, query=None) -> dict:
    """What an API Gateway HTTP API (v2) with a named stage sends for the same URL."""
    headers = {"host": API_HOST, "content-type": "application/json", "x-forwarded-proto": "https",
               **{name.lower(): value for name, value in (headers or {}).items()}}
    return {"version": "2.0", "routeKey": "$default", "rawPath": f"/{stage}{path}",
            "rawQueryString": "&".join(f"{name}={value}" for name, value in (query or {}).items()),
            **({"queryStringParameters": query} if query else {}),
            "headers": headers, "isBase64Encoded": False, "body": None if body is None else json.dumps(body),
            "requestContext": {"http": {"method": method, "path": f"/{stage}{path}", "protocol": "HTTP/1.1",
                                        "sourceIp": "198.51.100.7", "userAgent": "SecureX"},
                               "stage": stage, "domainName": API_HOST, "requestId": "http-request",
                               "routeKey": "$default", "timeEpoch": 0}}


def runtime_sdk(folder: Path) -> Path:
    """boto3 and botocore as the Lambda runtime provides them (Zappa's handler imports boto3)."""
    folder.mkdir(exist_ok=True)
    for name in ("boto3", "botocore", "s3transfer"):
        package = Path(__import__(name).__file__).parent
        if not (folder / name).exists():
            (folder / name).symlink_to(package, target_is_directory=True)
    return folder


def invoke(artefact: Artefact, events: list, environment: dict, scratch: Path) -> dict:
    """Import the artefact's handler in a fresh interpreter (no site-packages) and pass it the events."""
    blackhole = closed_loopback_port()
    proxy = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(scratch / "home"), "LANG": "C.UTF-8",
           "PYTHONPATH": f"{artefact.task}:{runtime_sdk(scratch / 'runtime-sdk')}",
           "LAMBDA_TASK_ROOT": str(artefact.task), "AWS_REGION": "us-east-1",
           "AWS_LAMBDA_FUNCTION_NAME": f"tr-relay-engine-{artefact.stage}",
           "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "NO_PROXY": "127.0.0.1,localhost", **environment}
    try:
        done = subprocess.run([artefact.python, "-S", "-c", DRIVER], cwd=artefact.task, env=env, text=True,
                              input=json.dumps(events), capture_output=True, timeout=120)
    finally:
        blackhole.close()
    assert done.returncode == 0, done.stdout + done.stderr
    line = [line for line in done.stdout.splitlines() if line.startswith("ANSWERS ")][-1]
    return {**json.loads(line[len("ANSWERS "):]), "log": done.stdout.replace(line, "") + done.stderr}


def lambda_environment(stage: str, stand_in: StandInVendor) -> dict:
    """The function's environment: the stage's aws_environment_variables and the SECRET_KEY set in the console."""
    variables = dict(SETTINGS[stage].get("aws_environment_variables")
                     or SETTINGS[SETTINGS[stage].get("extends", stage)].get("aws_environment_variables", {}))
    return {**variables, "SECRET_KEY": SECRET_KEY, "RELAY_UPSTREAM_ABUSEIPDB": stand_in.origin}


def bearer(audience: str) -> dict:
    return {"Authorization": "Bearer " + mint_hs256({"key": VENDOR_KEY, "aud": audience}, SECRET_KEY)}


def body_of(answer: dict) -> dict:
    assert answer["statusCode"] == 200, answer
    return json.loads(answer["body"])


@pytest.fixture(scope="module")
def abuseipdb_stand_in():
    with StandInVendor(routes_from_examples(load_spec(ROOT / "vendors" / "abuseipdb.yaml"))) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def dev_answers(artefact, abuseipdb_stand_in, scratch):
    root = f"https://{API_HOST}/dev/abuseipdb"
    observable = [{"type": "ip", "value": "192.0.2.45"}]
    events = []
    for make in (rest_api_event, http_api_event):
        events += [
            make("POST", "/abuseipdb/health", "dev", headers=bearer(root)),
            make("POST", "/abuseipdb/observe/observables", "dev", observable, bearer(root)),
            make("POST", "/abuseipdb/health", "dev", headers=bearer(f"https://{API_HOST}/abuseipdb")),
            make("GET", SETTINGS["dev"]["touch_path"], "dev"),
            make("POST", "/nosuchvendor/health", "dev", headers=bearer(root)),
            make("POST", "/abuseipdb/health", "dev", query={"jwt": QUERY_TOKEN}),
        ]
    result = invoke(artefact, events, lambda_environment("dev", abuseipdb_stand_in), scratch)
    print(f"\nhandler: import {result['import_seconds'] * 1000:.0f} ms, "
          f"import and {len(events)} requests {result['seconds'] * 1000:.0f} ms")
    return {"v1": result["answers"][:6], "v2": result["answers"][6:], "log": result["log"],
            "compiled_specs": result["compiled_specs"]}


def test_the_artefact_starts_from_its_packed_spec_cache(artefact, dev_answers):
    """The build compiled every spec into spec-cache/ (RELAY_SPEC_CACHE): the function reads them
    back instead of parsing and compiling the catalogue on every cold start."""
    packed = sorted(path.name.rsplit("-", 1)[0] for path in (artefact.task / "spec-cache").glob("*.pickle"))
    assert packed == sorted(path.stem for path in (ROOT / "vendors").glob("*.yaml"))
    assert dev_answers["compiled_specs"] is False  # no spec was compiled: the pipeline was never imported


def test_on_lambda_each_request_logs_a_json_line_with_cloudwatch_metrics(dev_answers):
    lines = [json.loads(line) for line in dev_answers["log"].splitlines() if line.startswith('{"type":"relay-request"')]
    observed = [line for line in lines if line["route"] == "observe"]
    assert len(lines) >= 8 and len(observed) == 2  # every relay request of the two APIs' events
    for line in observed:
        assert line["vendor"] == "abuseipdb" and line["outcome"] == "ok" and line["VendorCalls"] >= 1
        assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["vendor", "route"]]
    assert VENDOR_KEY not in dev_answers["log"] and SECRET_KEY not in dev_answers["log"]


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_the_artefact_answers_health(dev_answers, api):
    assert body_of(dev_answers[api][0]) == {"data": {"status": "ok"}}


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_the_artefact_answers_observe_with_ctim_from_the_vendor(dev_answers, api, abuseipdb_stand_in):
    body = body_of(dev_answers[api][1])
    assert "errors" not in body, body
    for entity in ("verdicts", "judgements", "sightings", "indicators"):
        assert body["data"][entity]["count"] > 0, entity
    assert body["data"]["verdicts"]["docs"][0]["observable"] == {"type": "ip", "value": "192.0.2.45"}
    checks = [call for call in abuseipdb_stand_in.received if call.path == "/api/v2/check"]
    assert checks and all(call.headers.get("Key") == VENDOR_KEY for call in checks)


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_the_url_root_the_handler_sees_carries_the_stage(dev_answers, api):
    """A token for the URL without the stage is refused: `aud` is checked against <host>/<stage>/<vendor>."""
    body = body_of(dev_answers[api][2])
    assert body["errors"][0]["code"] == "authorization error"
    assert body["errors"][0]["message"] == "Authorization failed: Wrong configuration-token-audience"


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_zappas_touch_path_answers_and_unknown_vendors_are_404(dev_answers, api):
    assert dev_answers[api][3]["statusCode"] == 200
    assert dev_answers[api][4]["statusCode"] == 404


def test_zappas_request_log_keeps_no_query_string(dev_answers):
    """A token sent in the query is refused, and Zappa's log line of the request does not keep it."""
    for api in ("v1", "v2"):
        assert body_of(dev_answers[api][5])["errors"][0]["code"] == "authorization error"
    assert "/dev/abuseipdb/health" in dev_answers["log"] or "/abuseipdb/health" in dev_answers["log"]
    assert QUERY_TOKEN not in dev_answers["log"]


def test_the_single_vendor_stage_serves_its_vendor_at_the_stage_root(scratch, abuseipdb_stand_in):
    stage = next(name for name, settings in SETTINGS.items()
                 if settings.get("aws_environment_variables", {}).get("RELAY_VENDOR") == "abuseipdb")
    built = build(stage, scratch)
    root = f"https://{API_HOST}/{stage}"
    answers = invoke(built, [rest_api_event("POST", "/health", stage, headers=bearer(root)),
                             http_api_event("POST", "/observe/observables", stage,
                                            [{"type": "ip", "value": "192.0.2.45"}], bearer(root))],
                     lambda_environment(stage, abuseipdb_stand_in), scratch)["answers"]
    assert body_of(answers[0]) == {"data": {"status": "ok"}}
    assert body_of(answers[1])["data"]["verdicts"]["count"] == 1


# -- 3. deploy, update, status, undeploy against moto -------------------------------------------------

def iam_allows(policy: dict, action: str, resource: str) -> bool:
    """Whether an Allow statement names the action and the resource (IAM wildcards * and ?)."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        if any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in actions) and \
                any(fnmatch.fnmatchcase(resource, pattern) for pattern in resources):
            return True
    return False


S3_ACTIONS = {"HeadBucket": "ListBucket", "ListObjects": "ListBucket", "ListObjectsV2": "ListBucket",
              "HeadObject": "GetObject", "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
              "CompleteMultipartUpload": "PutObject", "DeleteObjects": "DeleteObject"}
NEEDS_NO_PERMISSION = {("sts", "GetCallerIdentity")}


@dataclass(frozen=True)
class AwsCall:
    action: str
    resource: str


def iam_view(model, params: dict, region: str, account: str) -> AwsCall | None:
    """The IAM action and resource an API call is authorized as (for the services Zappa uses)."""
    service, operation = model.service_model.service_name, model.name
    if (service, operation) in NEEDS_NO_PERMISSION:
        return None
    if service == "apigateway":  # API Gateway authorizes by HTTP verb on the resource path
        path = model.http["requestUri"].split("?")[0]
        for name, shape in model.input_shape.members.items():
            if shape.serialization.get("location") == "uri" and name in params:
                path = re.sub(r"\{%s\+?\}" % shape.serialization["name"], str(params[name]), path)
        return AwsCall(f"apigateway:{model.http['method']}", f"arn:aws:apigateway:{region}::{path}")
    if service == "s3":
        key = f"/{params['Key']}" if "Key" in params else ""
        return AwsCall(f"s3:{S3_ACTIONS.get(operation, operation)}", f"arn:aws:s3:::{params.get('Bucket', '*')}{key}")
    if service == "lambda" and "FunctionName" in params:
        name = str(params["FunctionName"]).split(":function:")[-1].split(":")[0]
        return AwsCall(f"lambda:{operation}", f"arn:aws:lambda:{region}:{account}:function:{name}")
    if service == "iam" and "RoleName" in params:
        return AwsCall(f"iam:{operation}", f"arn:aws:iam::{account}:role/{params['RoleName']}")
    if service == "cloudformation" and "StackName" in params:
        return AwsCall(f"cloudformation:{operation}",
                       f"arn:aws:cloudformation:{region}:{account}:stack/{params['StackName']}/0")
    return AwsCall(f"{service}:{operation}", "*")


def read_policy(name: str) -> dict:
    return json.loads((AWS / name).read_text())


def make_the_howto_account(admin: boto3.Session) -> tuple[str, str, str]:
    """The IAM side of aws/HOWTO.md: the execution role and the `serverless` user with its policy."""
    iam = admin.client("iam")
    role = iam.create_role(RoleName=SETTINGS["dev"]["role_name"],
                           AssumeRolePolicyDocument=(AWS / "ZappaLambdaExecutionRoleTrustPolicy.json").read_text())
    execution = iam.create_policy(PolicyName="ZappaLambdaExecutionPolicy",
                                  PolicyDocument=(AWS / "ZappaLambdaExecutionPolicy.json").read_text())
    iam.attach_role_policy(RoleName=SETTINGS["dev"]["role_name"], PolicyArn=execution["Policy"]["Arn"])
    deployment = iam.create_policy(PolicyName="ZappaLambdaDeploymentPolicy",
                                   PolicyDocument=(AWS / "ZappaLambdaDeploymentPolicy.json").read_text())
    iam.create_user(UserName="serverless")
    iam.attach_user_policy(UserName="serverless", PolicyArn=deployment["Policy"]["Arn"])
    key = iam.create_access_key(UserName="serverless")["AccessKey"]
    return role["Role"]["Arn"], key["AccessKeyId"], key["SecretAccessKey"]


def no_function_urls(**_):
    """moto 5 lacks ListFunctionUrlConfigs (Zappa's update asks it); AWS's answer for a function without URLs."""
    return AWSResponse("https://lambda.us-east-1.amazonaws.com", 200, {}, None), {
        "FunctionUrlConfigs": [], "ResponseMetadata": {"HTTPStatusCode": 200}}


def test_deploy_update_status_undeploy_against_moto(artefact, scratch, monkeypatch, capsys):
    from zappa.cli import ZappaCLI

    stage, settings = "dev", SETTINGS["dev"]
    function = f"{settings['project_name']}-{stage}"
    home = scratch / "aws-home"
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                     "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(scratch / "project")
    calls = []

    with mock_aws():
        admin = boto3.Session(aws_access_key_id="admin", aws_secret_access_key="admin", region_name="us-east-1")
        role_arn, key_id, key_secret = make_the_howto_account(admin)
        account = admin.client("sts").get_caller_identity()["Account"]
        # `aws configure --profile serverless`, as the HOWTO says
        (home / ".aws" / "credentials").write_text(
            f"[{settings['profile_name']}]\naws_access_key_id = {key_id}\naws_secret_access_key = {key_secret}\n")
        (home / ".aws" / "config").write_text(
            f"[profile {settings['profile_name']}]\nregion = {settings['aws_region']}\noutput = json\n")
        deployer = boto3.Session(profile_name=settings["profile_name"])

        def record(model=None, params=None, **_):
            call = iam_view(model, params or {}, deployer.region_name, account)
            if call:
                calls.append(call)

        deployer.events.register("before-parameter-build", record)  # sees the call's own parameters
        deployer.events.register("before-call.lambda.ListFunctionUrlConfigs", no_function_urls)

        cli = ZappaCLI()
        cli.api_stage = stage
        cli.load_settings("zappa_settings.json", session=deployer)
        cli.override_stage_config_setting("touch", False)  # touching would GET the real execute-api URL

        cli.deploy(source_zip=str(artefact.zip_path))
        aws_lambda, apigateway = admin.client("lambda"), admin.client("apigateway")
        config = aws_lambda.get_function_configuration(FunctionName=function)
        assert config["Runtime"] == settings["runtime"]
        assert config["Handler"] == "handler.lambda_handler"
        assert config["Role"] == role_arn
        assert (config["MemorySize"], config["Timeout"]) == (settings["memory_size"], settings["timeout_seconds"])
        assert config["Environment"]["Variables"] == settings["aws_environment_variables"]
        api = next(api for api in apigateway.get_rest_apis()["items"] if api["name"] == function)
        resources = {r["path"]: r for r in apigateway.get_resources(restApiId=api["id"])["items"]}
        assert {"/", "/{proxy+}"} <= set(resources)
        integration = apigateway.get_integration(restApiId=api["id"], resourceId=resources["/{proxy+}"]["id"],
                                                 httpMethod="ANY")
        assert integration["type"] == "AWS_PROXY"
        invoked = re.search(r"functions/(arn:aws:lambda:[^/]+)/invocations", integration["uri"]).group(1)
        assert invoked.endswith(f":function:{function}")
        # API Gateway invokes the relay as the execution role (moto keeps the template, not the credentials)
        template = admin.client("cloudformation").get_template(StackName=function)["TemplateBody"]
        template = json.loads(template) if isinstance(template, str) else template  # botocore parses JSON bodies
        methods = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"]
        assert methods and all(m["Integration"]["Credentials"] == role_arn for m in methods)
        assert iam_allows(read_policy("ZappaLambdaExecutionPolicy.json"), "lambda:InvokeFunction", invoked)
        assert [s["stageName"] for s in apigateway.get_stages(restApiId=api["id"])["item"]] == [stage]

        # SECRET_KEY is set in the Lambda console after the first deploy; an update must keep it
        variables = {**config["Environment"]["Variables"], "SECRET_KEY": SECRET_KEY}
        aws_lambda.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
        cli.update(source_zip=str(artefact.zip_path))
        config = aws_lambda.get_function_configuration(FunctionName=function)
        assert config["Environment"]["Variables"]["SECRET_KEY"] == SECRET_KEY
        versions = [v["Version"] for v in aws_lambda.list_versions_by_function(FunctionName=function)["Versions"]]
        assert versions == ["$LATEST", "1", "2"]

        capsys.readouterr()
        cli.status(return_json=True)
        status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert status["Lambda Name"] == function and status["Lambda Runtime"] == settings["runtime"]
        assert status["API Gateway URL"].endswith(f".execute-api.{settings['aws_region']}.amazonaws.com/{stage}")

        cli.undeploy(no_confirm=True, remove_logs=True)
        assert function not in [f["FunctionName"] for f in aws_lambda.list_functions()["Functions"]]
        # The API goes with its CloudFormation stack (moto keeps the API once the stack is gone)
        stacks = admin.client("cloudformation").describe_stacks()["Stacks"]
        assert function not in [stack["StackName"] for stack in stacks]

    deployment_policy = read_policy("ZappaLambdaDeploymentPolicy.json")
    denied = sorted({f"{call.action} on {call.resource}" for call in calls
                     if not iam_allows(deployment_policy, call.action, call.resource)})
    assert len(calls) > 30
    assert not denied, "aws/ZappaLambdaDeploymentPolicy.json does not allow: " + "; ".join(denied)
