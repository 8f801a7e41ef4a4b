#!/usr/bin/env python3
"""Verify a fieldkit receipt export with only the box's PEM public key.

usage: verify.py [--checkpoint FILE] [--cloud-key PEM] box.pem export.ndjson

Written from sync/receipts/README.md alone: the standard library plus the
`cryptography` package (Debian: python3-cryptography) for Ed25519. Prints
"ok N records, turnover T, head H" and exits 0, or prints
"FAIL record N: <reason>: <detail>" for the first bad record and exits 1
(2 for a usage or file error). No check is an assert, so `python3 -O`
verifies exactly the same.
"""
import base64
import binascii
import hashlib
import json
import re
import sys
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding, PublicFormat, load_pem_public_key)

SIGN_DOMAIN = b"fieldkit-receipt-v1\0"
GENESIS_DOMAIN = b"fieldkit-receipt-genesis-v1\0"
CHECKPOINT_DOMAIN = b"fieldkit-checkpoint-v1\0"
INT64 = (-(1 << 63), (1 << 63) - 1)
UINT64 = (0, (1 << 64) - 1)

# Every record: these fields, in this order, each exactly once.
HEAD = ["v", "type", "box", "kid", "seq", "ts", "clock_synced", "boot", "prev", "turnover"]
FIELDS = {
    "sale": HEAD + ["order", "client_id", "items", "total", "currency", "pay"],
    "key_rotation": HEAD + ["new_kid", "new_key"],
    "handover": HEAD + ["sale", "order", "by"],
}
OPTIONAL_LAST = {"sale": "buyer"}
ITEM = ["sku", "qty", "price"]
BUYER = ["name", "phone", "email", "token"]
TS = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class Problem(Exception):
    def __init__(self, seq, reason, detail):
        super().__init__("record %d: %s: %s" % (seq, reason, detail))
        self.seq, self.reason, self.detail = seq, reason, detail


class Malformed(Exception):
    """A line or value that is not what the README describes."""


def kid_of(raw):
    return hashlib.sha256(raw).hexdigest()[:16]


def raw_of(pub):
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def no_constants(name):
    raise Malformed("%s is not JSON" % name)


class Obj(list):
    """A JSON object as its (key, value) pairs, in order, duplicates kept."""

    def get(self, key, default=None):
        for k, v in reversed(self):  # the last one wins, as in most decoders
            if k == key:
                return v
        return default

    def keys(self):
        return [k for k, _ in self]


def loads(text):
    return json.loads(text, object_pairs_hook=Obj, parse_constant=no_constants)


def go_json(v):
    """v as Go's encoding/json writes it (compact, UTF-8, <>& escaped)."""
    if isinstance(v, Obj):
        return "{" + ",".join(go_json(k) + ":" + go_json(x) for k, x in v) + "}"
    if isinstance(v, list):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
        for c, e in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                     ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
            s = s.replace(c, e)
        return s
    return json.dumps(v)


def want_int(v, rng, what):
    if v is None:
        return 0
    if type(v) is not int or not rng[0] <= v <= rng[1]:
        raise Malformed("%s is not a %d-bit integer" % (what, 64))
    return v


def want_str(v, what):
    if v is None:
        return ""
    if type(v) is not str:
        raise Malformed("%s is not a string" % what)
    return v


def want_bool(v, what):
    if v is None:
        return False
    if type(v) is not bool:
        raise Malformed("%s is not true or false" % what)
    return v


def decode_record(body):
    """The record's values, typed; missing or null fields read as zero.
    Whether every field is present, once and in order is checked later."""
    try:
        r = loads(body.decode("utf-8", "surrogatepass"))
    except (ValueError, UnicodeDecodeError, Malformed) as e:
        raise Malformed("record bytes are not a receipt: %s" % e)
    if not isinstance(r, Obj):
        raise Malformed("record bytes are not a receipt: not a JSON object")
    d = {"raw": r}
    for k in ("v", "turnover", "total"):
        d[k] = want_int(r.get(k), INT64, k)
    d["seq"] = want_int(r.get("seq"), UINT64, "seq")
    d["sale"] = want_int(r.get("sale"), UINT64, "sale")
    for k in ("type", "box", "kid", "ts", "boot", "prev", "order", "client_id",
              "currency", "pay", "new_kid", "new_key", "by"):
        d[k] = want_str(r.get(k), k)
    d["clock_synced"] = want_bool(r.get("clock_synced"), "clock_synced")
    items = r.get("items")
    if items is not None and (not isinstance(items, list) or isinstance(items, Obj)):
        raise Malformed("items is not a list")
    d["items"] = []
    for it in items or []:
        if it is None:
            it = Obj()
        if not isinstance(it, Obj):
            raise Malformed("an item is not an object")
        d["items"].append((want_str(it.get("sku"), "sku"), want_int(it.get("qty"), INT64, "qty"),
                           want_int(it.get("price"), INT64, "price")))
    buyer = r.get("buyer")
    if buyer is not None:
        if not isinstance(buyer, Obj):
            raise Malformed("buyer is not an object")
        for k in BUYER:
            want_str(buyer.get(k), "buyer." + k)
    return d


def canonical_problem(d, body):
    """Why the record bytes are not the one form the README allows."""
    r = d["raw"]
    fields = FIELDS.get(d["type"])
    if fields is None:
        return "unknown record type %r" % d["type"]
    keys = r.keys()
    extra = OPTIONAL_LAST.get(d["type"])
    if keys != fields and not (extra and keys == fields + [extra]):
        return "fields %s; a %s record has exactly %s%s, in that order" % (
            ",".join(keys), d["type"], ",".join(fields), (" and optionally " + extra) if extra else "")
    for it in r.get("items") or []:
        if it.keys() != ITEM:
            return "an item has fields %s; expected %s" % (",".join(it.keys()), ",".join(ITEM))
    buyer = r.get("buyer")
    if buyer is not None:
        bk = buyer.keys()
        if not bk or bk != [k for k in BUYER if k in bk] or any(v == "" for _, v in buyer):
            return "buyer has fields %s; expected some of %s, in that order, none empty" % (",".join(bk), ",".join(BUYER))
    if go_json(r).encode("utf-8", "surrogatepass") != body:
        return "the bytes are not the compact encoding the README describes"
    return None


def parse_line(line):
    try:
        e = loads(line.decode("utf-8", "surrogatepass"))
    except (ValueError, UnicodeDecodeError, Malformed) as err:
        raise Malformed("not an export line: %s" % err)
    if not isinstance(e, Obj):
        raise Malformed("not an export line: not a JSON object")
    keys = e.keys()
    if len(set(keys)) != len(keys):
        raise Malformed("not an export line: a key appears twice")
    if not set(keys) <= {"seq", "record", "sig", "hash"}:
        raise Malformed("not an export line: unknown field")
    seq = want_int(e.get("seq"), UINT64, "seq")
    rec, sig, h = want_str(e.get("record"), "record"), want_str(e.get("sig"), "sig"), want_str(e.get("hash"), "hash")
    if rec == "" or sig == "":
        raise Malformed("not an export line: record and sig are required")
    try:
        body = rec.encode("utf-8")
        sig.encode("utf-8"), h.encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed("not an export line: a \\u escape is half of a UTF-16 surrogate pair")
    return seq, body, sig, h


def read_lines(path):
    """Yield (line number, parsed line or Malformed)."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                continue
            try:
                yield n, parse_line(line)
            except Malformed as e:
                yield n, Malformed("line %d: %s" % (n, e))


def rfc3339(ts):
    m = TS.match(ts)
    if not m:
        return None
    try:
        y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
        datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    frac = m.group(7) or ""
    off = m.group(8)
    secs = (datetime(y, mo, d, h, mi, s) - datetime(1970, 1, 1)).total_seconds()
    if off != "Z":
        sign = 1 if off[0] == "+" else -1
        secs -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    return (secs, frac.ljust(10, "0"))


class Chain:
    def __init__(self, first):
        kid = kid_of(raw_of(first))
        self.keys, self.sign_kid = {kid: first}, kid
        self.box, self.seq, self.head, self.turnover = None, 0, None, 0
        self.last_ts, self.warnings = None, []

    def check(self, stored_seq, body, sig_b64, stated_hash):
        want = self.seq + 1

        def fail(reason, fmt, *args):
            raise Problem(want, reason, fmt % args)

        try:
            d = decode_record(body)
        except Malformed as e:
            fail("malformed record", "%s", e)
        if d["v"] != 1:
            fail("malformed record", "format version %d; this verifier knows 1", d["v"])
        seq = d["seq"]
        if seq != want:
            if seq == self.seq and self.seq > 0:
                fail("duplicate", "seq %d appears twice", seq)
            if seq < want:
                fail("out of order", "seq %d found after seq %d", seq, self.seq)
            fail("gap", "seq %d found where seq %d was expected: %d record(s) missing", seq, want, seq - want)
        if stored_seq != 0 and stored_seq != seq:
            fail("malformed record", "stored as seq %d but the signed bytes say seq %d", stored_seq, seq)
        if self.box is None:
            self.box = d["box"]
            self.head = hashlib.sha256(GENESIS_DOMAIN + self.box.encode("utf-8", "surrogatepass") + b"\0"
                                       + self.sign_kid.encode()).hexdigest()
        if d["box"] != self.box:
            fail("wrong box", "record is from box %r, the chain is box %r", d["box"], self.box)
        if d["kid"] not in self.keys:
            fail("unknown key", "signed with key %s, which this chain never announced", d["kid"])
        if d["kid"] != self.sign_kid:
            fail("unknown key", "signed with retired key %s; key %s signs from here on", d["kid"], self.sign_kid)
        try:
            sig = base64.b64decode(sig_b64, validate=True)
        except (binascii.Error, ValueError):
            sig = b""
        if len(sig) != 64:
            fail("bad signature", "signature is not 64 bytes of base64")
        try:
            self.keys[d["kid"]].verify(sig, SIGN_DOMAIN + body)
        except InvalidSignature:
            fail("bad signature", "the signature does not match the record bytes for key %s", d["kid"])
        why = canonical_problem(d, body)
        if why:
            fail("malformed record", "not in the canonical form: %s", why)
        if d["prev"] != self.head:
            fail("broken link", "prev %.16s... does not match the hash of record %d (%.16s...)", d["prev"], self.seq, self.head)
        h = hashlib.sha256(body + sig).hexdigest()
        if stated_hash and stated_hash != h:
            fail("malformed record", "stated hash %.16s... is not the hash of the record (%.16s...)", stated_hash, h)
        turnover, new_key = self.turnover, None
        if d["type"] == "sale":
            total = 0
            for sku, qty, price in d["items"]:
                if qty <= 0 or price < 0 or qty * price > INT64[1] or total + qty * price > INT64[1]:
                    fail("malformed record", "item %s: qty %d x price %d is not an amount", sku, qty, price)
                total += qty * price
            if not d["items"] or total != d["total"]:
                fail("malformed record", "total %d is not the sum of qty x price over the items (%d)", d["total"], total)
            if d["total"] < 0 or turnover + d["total"] > INT64[1]:
                fail("turnover mismatch", "previous turnover %d plus total %d overflows a signed 64-bit integer", turnover, d["total"])
            turnover += d["total"]
        elif d["type"] == "key_rotation":
            try:
                raw = base64.b64decode(d["new_key"], validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                fail("malformed record", "rotation record without a valid new_key")
            if kid_of(raw) != d["new_kid"]:
                fail("malformed record", "rotation new_kid %s is not the id of new_key (%s)", d["new_kid"], kid_of(raw))
            new_key = Ed25519PublicKey.from_public_bytes(raw)
        elif d["type"] == "handover":
            if d["sale"] == 0 or d["sale"] >= seq:
                fail("malformed record", "hand-over of sale %d: a hand-over names an earlier record", d["sale"])
            if d["order"] == "" or d["by"] == "":
                fail("malformed record", "hand-over of sale %d without its order or who handed it over", d["sale"])
        else:
            fail("malformed record", "unknown record type %r", d["type"])
        if d["turnover"] != turnover:
            fail("turnover mismatch", "turnover %d; previous turnover %d plus this total makes %d", d["turnover"], self.turnover, turnover)
        ts = rfc3339(d["ts"])
        if ts is None:
            fail("malformed record", "ts %r is not RFC 3339", d["ts"])
        if self.last_ts is not None and ts < self.last_ts:
            self.warnings.append("record %d: time went backwards (clock_synced=%s)" % (seq, d["clock_synced"]))
        self.last_ts = ts
        self.seq, self.head, self.turnover = seq, h, turnover
        if new_key is not None:
            self.keys[d["new_kid"]], self.sign_kid = new_key, d["new_kid"]
        return seq


def load_checkpoints(path, cloud):
    """path holds one or more signed checkpoints, JSON objects
    {"checkpoint", "sig", "key"} (one per line as `receipts checkpoint`
    writes them). One that names the cloud key is checked with it, any
    other with the key it carries: that proves it unaltered, not who
    signed it, which is enough since a checkpoint only adds a demand."""
    out = []
    text = open(path, "rb").read().decode("utf-8")
    dec, pos, n = json.JSONDecoder(object_pairs_hook=Obj, parse_constant=no_constants), 0, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos == len(text):
            break
        n += 1
        where = "%s: checkpoint %d" % (path, n)
        try:
            sc, pos = dec.raw_decode(text, pos)
            body = sc.get("checkpoint").encode("utf-8")
            sig = base64.b64decode(sc.get("sig"), validate=True)
            cp = loads(body.decode("utf-8"))
            kid = want_str(cp.get("kid"), "kid")
            if cloud is not None and kid == kid_of(raw_of(cloud)):
                key = cloud
            else:
                key = load_pem_public_key(sc.get("key").encode())
            key.verify(sig, CHECKPOINT_DOMAIN + body)
            if kid != kid_of(raw_of(key)):
                raise Malformed("names key %s but was verified with %s" % (kid, kid_of(raw_of(key))))
            out.append({"box": want_str(cp.get("box"), "box"),
                        "acked_through": want_int(cp.get("acked_through"), UINT64, "acked_through"),
                        "head": want_str(cp.get("head"), "head")})
        except (ValueError, AttributeError, TypeError, binascii.Error, InvalidSignature, Malformed) as e:
            raise SystemExit(usage_error("%s: %s" % (where, e or "signature does not verify")))
    if not out:
        raise SystemExit(usage_error("%s: no checkpoint in the file" % path))
    return out


def usage_error(msg):
    print("error: " + msg, file=sys.stderr)
    return 2


def verify(first, export, checkpoints):
    chain = Chain(first)
    count, problem, parse_error, cp_hash = 0, None, None, {}
    lines = read_lines(export)
    pending = None
    while True:
        nxt = pending if pending is not None else next(lines, None)
        pending = None
        if nxt is None:
            break
        _, parsed = nxt
        if isinstance(parsed, Malformed):
            parse_error = parsed
            break
        try:
            seq = chain.check(*parsed)
        except Problem as p:
            if p.reason == "gap":
                # A later record followed by the one that belongs here:
                # two were swapped, not lost.
                after = next(lines, None)
                if after is not None and not isinstance(after[1], Malformed):
                    try:
                        if decode_record(after[1][1])["seq"] == chain.seq + 1:
                            p = Problem(p.seq, "out of order", "seq %d is stored before seq %d" % (
                                decode_record(parsed[1])["seq"], chain.seq + 1))
                    except Malformed:
                        pass
            problem = p
            break
        count += 1
        for i, cp in enumerate(checkpoints):
            if seq == cp["acked_through"]:
                cp_hash[i] = chain.head
    if problem is None:
        for i, cp in enumerate(checkpoints):
            if cp["box"] and chain.box is not None and cp["box"] != chain.box:
                problem = Problem(cp["acked_through"], "wrong box", "the checkpoint is for box %r, the ledger is box %r" % (cp["box"], chain.box))
            elif chain.seq < cp["acked_through"]:
                problem = Problem(chain.seq + 1, "tail truncated",
                                  "the checkpoint acknowledges records through seq %d, but the ledger ends at seq %d" % (cp["acked_through"], chain.seq))
            elif i in cp_hash and cp_hash[i] != cp["head"]:
                problem = Problem(cp["acked_through"], "fork", "the checkpoint has hash %.16s... for this record, the ledger has %.16s..." % (cp["head"], cp_hash[i]))
            if problem:
                break
    if problem is None and parse_error is not None:
        problem = Problem(chain.seq + 1, "malformed record", str(parse_error))
    for w in chain.warnings:
        print("warning: " + w)
    if problem is not None:
        print("FAIL %s (after %d good records)" % (problem, count))
        return 1
    print("ok %d records, turnover %d, head %s" % (count, chain.turnover, chain.head))
    return 0


def main(argv):
    args, cp_file, cloud_file = [], None, None
    it = iter(argv)
    for a in it:
        if a == "--checkpoint":
            cp_file = next(it, None)
        elif a == "--cloud-key":
            cloud_file = next(it, None)
        else:
            args.append(a)
    if len(args) != 2 or (cp_file is None and "--checkpoint" in argv) or (cloud_file is None and "--cloud-key" in argv):
        return usage_error(__doc__.strip().splitlines()[2])
    try:
        first = load_pem_public_key(open(args[0], "rb").read())
        if not isinstance(first, Ed25519PublicKey):
            return usage_error("%s is not an Ed25519 public key" % args[0])
        cloud = load_pem_public_key(open(cloud_file, "rb").read()) if cloud_file else None
        checkpoints = load_checkpoints(cp_file, cloud) if cp_file else []
        return verify(first, args[1], checkpoints)
    except OSError as e:
        return usage_error(str(e))
    except ValueError as e:
        return usage_error("%s: %s" % (args[0], e))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
