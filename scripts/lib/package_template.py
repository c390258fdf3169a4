"""Packages template.yaml for CloudFormation the way `sam package` and CloudFormation's SAM
transform do: uploads the functions' code artifact to S3 and prints the template translated by
the SAM translator (`aws-sam-translator`, the version aws-sam-cli brings) with every function's
CodeUri pointed at it.

The system tests create the stack from this output on moto's CloudFormation (moto does not run
the SAM transform itself). The artifact is a placeholder: the tests run the functions' built
binaries under their local Lambda, and moto only stores the code.

Run it with the translator's venv (scripts/lib/sam-translator.sh exports SAM_TRANSLATOR_PYTHON):

    $SAM_TRANSLATOR_PYTHON scripts/lib/package_template.py template.yaml \
        --bucket artifacts --key functions.zip --region us-east-1 \
        --parameter Architecture=x86_64 --parameter AlertSender=jobs@example.com ...

S3 is reached with boto3's configuration from the environment (AWS_ENDPOINT_URL for moto).
"""

import argparse
import io
import json
import sys
import zipfile

import boto3
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER_BOOTSTRAP = (
    "#!/bin/sh\n"
    "# A placeholder uploaded by scripts/lib/package_template.py: the system tests run the\n"
    "# functions' built binaries under their local Lambda, never this.\n"
    "exit 1\n"
)


def parameter(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {text!r}")
    return name, value


def placeholder_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        # Executable, as a provided.al2023 bootstrap must be.
        info.external_attr = 0o755 << 16
        archive.writestr(info, PLACEHOLDER_BOOTSTRAP)
    return buffer.getvalue()


def upload(session, bucket, key):
    s3 = session.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=placeholder_zip())


def point_code_at(template, code_uri):
    """Every function's CodeUri (the global one and each function's own) names the artifact,
    as `sam package` rewrites the local paths to the uploaded objects."""
    globals_ = template.get("Globals", {}).get("Function") or {}
    inherited = "CodeUri" in globals_
    if inherited:
        globals_["CodeUri"] = code_uri
    functions = 0
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            functions += 1
            properties = resource.setdefault("Properties", {})
            if "CodeUri" in properties or not inherited:
                properties["CodeUri"] = code_uri
    if functions == 0:
        sys.exit("package_template: the template declares no AWS::Serverless::Function")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--parameter", type=parameter, action="append", default=[])
    args = parser.parse_args()

    with open(args.template, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    session = boto3.session.Session(region_name=args.region)
    upload(session, args.bucket, args.key)
    point_code_at(template, f"s3://{args.bucket}/{args.key}")

    # CloudFormation runs the transform with the stack's parameter values; so does this. The
    # managed-policy loader asks IAM only if a function names policies (ours have roles).
    translator = Translator(None, Parser(), boto_session=session)
    loader = ManagedPolicyLoader(session.client("iam"))
    try:
        translated = translator.translate(
            template,
            parameter_values=dict(args.parameter),
            get_managed_policy_map=loader.load,
        )
    except InvalidDocumentException as refused:
        causes = "\n".join(f"  {cause.message}" for cause in refused.causes)
        sys.exit(f"package_template: the SAM translator refused {args.template}:\n{causes}")
    # Compact, in the translator's order (moto creates and lists resources in it).
    json.dump(translated, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
