#!/usr/bin/env python3
"""Verify a fieldkit receipt export with only the box's PEM public key.

usage: verify.py box.pem export.ndjson
"""
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding, PublicFormat, load_pem_public_key)

def kid_of(pub):
    raw = pub.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]

first = load_pem_public_key(open(sys.argv[1], "rb").read())
keys = {kid_of(first): first}
sign_kid = kid_of(first)
prev, seq, turnover = None, 0, 0
for line in open(sys.argv[2], "rb"):
    if not line.strip():
        continue
    entry = json.loads(line)
    body = entry["record"].encode("utf-8")      # the exact stored bytes
    sig = base64.b64decode(entry["sig"])        # 64 raw bytes
    r = json.loads(body)
    if prev is None:                            # genesis
        prev = hashlib.sha256(b"fieldkit-receipt-genesis-v1\0" + r["box"].encode()
                              + b"\0" + sign_kid.encode()).hexdigest()
    where = "record %d" % (seq + 1)
    assert r["seq"] == seq + 1, where + ": gap or reorder (seq %d)" % r["seq"]
    assert r["kid"] == sign_kid, where + ": unknown key " + r["kid"]
    keys[r["kid"]].verify(sig, b"fieldkit-receipt-v1\0" + body)  # raises if bad
    assert r["prev"] == prev, where + ": broken link"
    if r["type"] == "sale":
        turnover += r["total"]
    elif r["type"] == "key_rotation":
        new = Ed25519PublicKey.from_public_bytes(base64.b64decode(r["new_key"]))
        assert kid_of(new) == r["new_kid"], where + ": bad new_kid"
        keys[r["new_kid"]], sign_kid = new, r["new_kid"]
    assert r["turnover"] == turnover, where + ": turnover mismatch"
    prev, seq = hashlib.sha256(body + sig).hexdigest(), r["seq"]
print("ok %d records, turnover %d, head %s" % (seq, turnover, prev))
