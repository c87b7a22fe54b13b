"""zappa_settings.json, the aws/ files and the deploy docs agree with each other and with the engine.

Nothing is built here (tests/test_deploy_lambda.py builds and deploys): these are the promises a
reader of aws/HOWTO.md relies on, checked in milliseconds.
"""
from __future__ import annotations

import fnmatch
import json
import re
import shutil
from pathlib import Path

import pytest

from engine import create_app, load_specs
from engine.serving.config import RelayConfig

ROOT = Path(__file__).resolve().parent.parent
AWS = ROOT / "aws"
SETTINGS = json.loads((ROOT / "zappa_settings.json").read_text())
ROLE = "tr-serverless-relay-ZappaLambdaExecutionRole"
AMAZON_LINUX_2023_RUNTIMES = ("python3.12", "python3.13", "python3.14")  # glibc 2.34
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|TOKEN|API_?KEY|PRIVATE", re.IGNORECASE)


def stage(name: str) -> dict:
    """A stage as Zappa reads it: `extends` resolved, the stage's own keys winning."""
    own = SETTINGS[name]
    return {**stage(own["extends"]), **own} if "extends" in own else dict(own)


def relay_vendor(name: str) -> str | None:
    return stage(name).get("aws_environment_variables", {}).get("RELAY_VENDOR")


def function_names() -> list:
    return [f"{stage(name)['project_name']}-{name}" for name in SETTINGS]


def policy(name: str) -> dict:
    document = json.loads((AWS / name).read_text())
    assert document["Version"] == "2012-10-17"
    return document


def allows(document: dict, action: str, resource: str) -> bool:
    for statement in document["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        if statement["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in actions) \
                and any(fnmatch.fnmatchcase(resource, r) for r in resources):
            return True
    return False


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_stage_deploys_the_seeds_way(name):
    settings = stage(name)
    assert settings["app_function"] == "engine.wsgi.app"
    assert settings["profile_name"] == "serverless"
    assert settings["manage_roles"] is False and settings["role_name"] == ROLE
    assert settings["runtime"] in AMAZON_LINUX_2023_RUNTIMES, "the compiled wheels need glibc 2.34"
    assert settings["s3_bucket"].startswith("zappa-"), "the deployment policy grants zappa-* buckets only"
    assert settings["keep_warm"] is False and settings["debug"] is False
    assert settings["aws_environment_variables"]["INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT"] == "True"


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_no_stage_holds_a_secret(name):
    """Secrets are set on the function (the console), never here: `environment_variables` even land in the zip."""
    settings = stage(name)
    assert "environment_variables" not in settings
    for key, value in settings["aws_environment_variables"].items():
        assert not SECRET_WORDS.search(key), key
        assert not re.fullmatch(r"[A-Za-z0-9_\-]{32,}", value), f"{key} looks like a key"


def test_dev_serves_the_catalogue_and_a_stage_serves_one_vendor_at_its_root():
    assert relay_vendor("dev") is None
    single = [name for name in SETTINGS if relay_vendor(name)]
    assert single, "an example single-vendor stage (RELAY_VENDOR)"
    catalogue = load_specs(ROOT / "vendors")
    for name in single:
        assert SETTINGS[name]["extends"] == "dev"
        assert relay_vendor(name) in catalogue


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_zappas_touch_path_is_a_route_that_answers_a_get(name):
    config = RelayConfig(auth_mode="hs256", secret_key="touch-test-key-" + "x" * 32, root_vendor=relay_vendor(name))
    client = create_app(load_specs(ROOT / "vendors"), config).test_client()
    assert client.get(stage(name)["touch_path"]).status_code == 200


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_excludes_keep_the_specs_and_the_schema(name):
    settings = stage(name)
    ignore = shutil.ignore_patterns(*settings["exclude"])  # how Zappa applies `exclude`, at every depth
    kept = [path for path in [*(ROOT / "vendors").rglob("*"), *(ROOT / "engine").rglob("*")]
            if "__pycache__" not in path.parts]
    for path in kept:
        assert not ignore(str(path.parent), [path.name]), f"`exclude` drops {path.relative_to(ROOT)}"
    for pattern in settings["exclude_glob"]:  # relative to the package root
        hit = [p for p in ROOT.glob(pattern) if p.parts[len(ROOT.parts)] in ("vendors", "engine")]
        assert hit == [], f"`exclude_glob` {pattern} drops {hit}"
    assert not ignore(str(ROOT), ["spec.schema.json", "abuseipdb.yaml", "vendors", "schema", "examples"])


def test_the_role_is_trusted_by_lambda_and_api_gateway():
    trust = policy("ZappaLambdaExecutionRoleTrustPolicy.json")["Statement"]
    assert [s["Action"] for s in trust] == ["sts:AssumeRole"]
    assert set(trust[0]["Principal"]["Service"]) == {"lambda.amazonaws.com", "apigateway.amazonaws.com"}


def test_the_execution_policy_lets_api_gateway_invoke_every_stage_and_the_relay_log():
    execution = policy("ZappaLambdaExecutionPolicy.json")
    for function in function_names():
        assert allows(execution, "lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:123456789012:function:{function}")
    assert not allows(execution, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:123456789012:function:payroll")
    for action in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"):
        assert allows(execution, action, "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/x:*")


def test_the_deployment_policy_covers_the_settings_and_nothing_wider():
    deployment = policy("ZappaLambdaDeploymentPolicy.json")
    role_arn = f"arn:aws:iam::123456789012:role/{ROLE}"
    assert allows(deployment, "iam:PassRole", role_arn) and allows(deployment, "iam:GetRole", role_arn)
    assert not allows(deployment, "iam:PassRole", "arn:aws:iam::123456789012:role/Admin")
    assert not any(allows(deployment, action, "*") for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:*"))
    for name in SETTINGS:
        settings, function = stage(name), f"{stage(name)['project_name']}-{name}"
        assert allows(deployment, "lambda:UpdateFunctionCode", f"arn:aws:lambda:us-east-1:1:function:{function}")
        assert allows(deployment, "cloudformation:UpdateStack",
                      f"arn:aws:cloudformation:us-east-1:1:stack/{function}/x")
        assert allows(deployment, "s3:PutObject", f"arn:aws:s3:::{settings['s3_bucket']}/{function}.zip")
    assert not allows(deployment, "lambda:UpdateFunctionCode", "arn:aws:lambda:us-east-1:1:function:payroll")


def test_the_howto_walks_the_seeds_steps_with_this_projects_names():
    howto = (AWS / "HOWTO.md").read_text()
    runtime = SETTINGS["dev"]["runtime"]
    for needed in ("`serverless`", "ZappaLambdaDeploymentPolicy", "ZappaLambdaExecutionPolicy", ROLE,
                   "ZappaLambdaExecutionRoleTrustPolicy.json", f"{runtime} -m venv",
                   "zappa deploy dev", "zappa update dev", "zappa status dev", "zappa tail dev",
                   "relay jwt", "relay module-type", "SECRET_KEY", "RELAY_VENDOR", "CommonErrors.md",
                   "EnvironmentVariables.md", SETTINGS["dev"]["project_name"]):
        assert needed in howto, needed
    for linked in re.findall(r"\]\(([^)#]+)\)", howto):
        if not linked.startswith("http"):
            assert (AWS / linked).exists(), linked


def test_every_variable_the_relay_reads_is_documented():
    documented = (AWS / "EnvironmentVariables.md").read_text()
    config_doc = (ROOT / "engine" / "serving" / "config.py").read_text().split('"""')[1]
    variables = re.findall(r"^\s{4}([A-Z][A-Z_<>]+)\s", config_doc, re.MULTILINE)
    assert "SECRET_KEY" in variables and "RELAY_AUTH" in variables
    for variable in [*variables, "INSTANTIATE_LAMBDA_HANDLER_ON_IMPORT"]:
        assert f"`{variable}`" in documented, variable


def test_the_readme_points_to_both_hosting_paths():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    assert "aws/HOWTO.md" in section and "engine.wsgi:app" in section
    assert f"python{SETTINGS['dev']['runtime'][6:]} -m venv .venv-deploy" in section
