"""Prepares a moto server for tests/credentials.rs, then turns its IAM checks on.

Creates an IAM user with an access key that may only assume role `invoker`; the role trusts the
user and may invoke any Lambda function; function `moto-fn` (moto's simple backend: it echoes
the payload). A second role, `unreachable`, trusts nobody. Then every later request must be
signed by a known key and allowed by IAM policy. Prints the user's keys and the roles as JSON.

Usage: python3 moto_iam.py http://127.0.0.1:PORT
"""

import io
import json
import sys
import urllib.request
import zipfile

import boto3

endpoint = sys.argv[1]


def moto_api(path, body):
    # Not form-encoded: moto reads the raw body.
    req = urllib.request.Request(
        endpoint + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(req).read()


moto_api("/moto-api/config", json.dumps({"lambda": {"use_docker": False}}).encode())

setup = dict(
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="setup",
    aws_secret_access_key="setup",
)
iam = boto3.client("iam", **setup)
user = iam.create_user(UserName="gateway")["User"]
key = iam.create_access_key(UserName="gateway")["AccessKey"]


def document(statement):
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def role(name, trusted):
    trust = {
        "Effect": "Allow",
        "Principal": {"AWS": trusted},
        "Action": "sts:AssumeRole",
    }
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=document(trust))["Role"]


invoker = role("invoker", user["Arn"])
unreachable = role("unreachable", "arn:aws:iam::123456789012:user/somebody-else")
iam.put_role_policy(
    RoleName="invoker",
    PolicyName="invoke",
    PolicyDocument=document(
        # moto names the action after its operation (`lambda:Invoke`), AWS `InvokeFunction`.
        {
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction", "lambda:Invoke"],
            "Resource": "*",
        }
    ),
)
iam.put_user_policy(
    UserName="gateway",
    PolicyName="assume",
    PolicyDocument=document(
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": invoker["Arn"]}
    ),
)

code = io.BytesIO()
with zipfile.ZipFile(code, "w") as z:
    z.writestr("index.py", "def handler(event, context):\n    return event\n")
boto3.client("lambda", **setup).create_function(
    FunctionName="moto-fn",
    Runtime="python3.11",
    Role=invoker["Arn"],
    Handler="index.handler",
    Code={"ZipFile": code.getvalue()},
)

# From here on, every request is authenticated and authorised.
moto_api("/moto-api/reset-auth", b"0")

print(
    json.dumps(
        {
            "key": key["AccessKeyId"],
            "secret": key["SecretAccessKey"],
            "invoker": invoker["Arn"],
            "unreachable": unreachable["Arn"],
        }
    )
)
