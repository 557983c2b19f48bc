"""Signs JWTs with PyJWT for tests/jwt.rs, so the gateway's checks meet an independent signer.

Reads a JSON request on stdin: {"dir": path, "tokens": [{"alg", "claims", "headers"?, "secret"?}]}.
Key pairs live in dir (rsa.pem/rsa.pub, ec.pem/ec.pub, ed.pem/ed.pub): made on the first call,
read again on the next ones. Prints {"tokens": [...]}, one signed token per request, in order.
"""
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

request = json.load(sys.stdin)
directory = request["dir"]
makers = {
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed": ed25519.Ed25519PrivateKey.generate,
}
private = {}
for name, make in makers.items():
    path = f"{directory}/{name}.pem"
    if os.path.exists(path):
        with open(path, "rb") as f:
            private[name] = serialization.load_pem_private_key(f.read(), password=None)
        continue
    key = private[name] = make()
    with open(f"{directory}/{name}.pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(f"{directory}/{name}.pub", "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))

family = {"RS": "rsa", "PS": "rsa", "ES": "ec", "Ed": "ed"}
tokens = []
for spec in request["tokens"]:
    alg = spec["alg"]
    key = spec.get("secret") if alg.startswith("HS") else private[family[alg[:2]]]
    tokens.append(jwt.encode(spec["claims"], key, algorithm=alg, headers=spec.get("headers")))
print(json.dumps({"tokens": tokens}))
