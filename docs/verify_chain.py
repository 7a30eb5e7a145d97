#!/usr/bin/env python3
"""Verify Docket's event log hash chains without Docket's code (see docs/HASH_CHAIN.md).

Usage:
  verify_chain.py path/to/docket.db            # a SQLite event log
  verify_chain.py events.csv                   # rows exported from PostgreSQL (see HASH_CHAIN.md)

Prints "intact <records> <last global hash>" and exits 0, or "broken at <position>: <reason>"
and exits 2. Uses only the Python standard library.
"""
import csv
import hashlib
import sqlite3
import struct
import sys
import uuid

COLUMNS = ("position, stream_id, stream_version, event_id, event_type, schema_version, "
           "recorded_at, command_id, payload, metadata, stream_hash, global_hash")
GENESIS = bytes(32)


def field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def stream_hash(prev: bytes, r) -> bytes:
    return hashlib.sha256(
        b"\x01" + prev
        + field(r["stream_id"].encode())
        + struct.pack(">Q", r["stream_version"])
        + r["event_id"]
        + field(r["event_type"].encode())
        + struct.pack(">I", r["schema_version"])
        + struct.pack(">q", r["recorded_at"])
        + r["command_id"]
        + field(r["payload"].encode())
        + field(r["metadata"].encode())
    ).digest()


def global_hash(prev: bytes, position: int, s_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + prev + struct.pack(">Q", position) + s_hash).digest()


def sqlite_rows(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    head = db.execute("SELECT position, global_hash FROM log_head WHERE id = 1").fetchone()
    rows = db.execute(f"SELECT {COLUMNS} FROM events ORDER BY position")
    names = [c.strip() for c in COLUMNS.split(",")]
    return (dict(zip(names, row)) for row in rows), (head[0], bytes(head[1]))


def csv_rows(path):
    def convert(row):
        row = dict(row)
        for name in ("position", "stream_version", "schema_version", "recorded_at"):
            row[name] = int(row[name])
        for name in ("event_id", "command_id"):
            row[name] = uuid.UUID(row[name]).bytes
        for name in ("stream_hash", "global_hash"):
            row[name] = bytes.fromhex(row[name].removeprefix("\\x"))
        return row
    handle = open(path, newline="", encoding="utf-8")
    return (convert(row) for row in csv.DictReader(handle)), None


def main(path):
    rows, head = sqlite_rows(path) if not path.endswith(".csv") else csv_rows(path)
    streams = {}
    prev_global, expected, checked = GENESIS, 1, 0
    for r in rows:
        if r["position"] != expected:
            return f"broken at {expected}: position {expected} is missing"
        r["event_id"], r["command_id"] = bytes(r["event_id"]), bytes(r["command_id"])
        version, prev_stream = streams.get(r["stream_id"], (0, GENESIS))
        if r["stream_version"] != version + 1:
            return f"broken at {r['position']}: stream version {r['stream_version']} follows {version}"
        s_hash = stream_hash(prev_stream, r)
        if s_hash != bytes(r["stream_hash"]):
            return f"broken at {r['position']}: the stream hash does not match the record's contents"
        g_hash = global_hash(prev_global, r["position"], s_hash)
        if g_hash != bytes(r["global_hash"]):
            return f"broken at {r['position']}: the global hash does not follow from the previous record"
        streams[r["stream_id"]] = (r["stream_version"], s_hash)
        prev_global, expected, checked = g_hash, expected + 1, checked + 1
    if head is not None and (head[0] != checked or (checked and head[1] != prev_global)):
        return f"broken at {checked + 1}: the log ends at position {checked} but its head says {head[0]}"
    print(f"intact {checked} {prev_global.hex()}")
    return None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    problem = main(sys.argv[1])
    if problem:
        print(problem)
        sys.exit(2)
