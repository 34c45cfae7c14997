#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seeds of fuzz_shared_slot (tests/fuzz/shared_slot/corpus): a
families file and a small-geometry slot file laid out as
src/metrics/shared/layout.h says (version 1, little-endian), trailing zero
bytes cut (the decoder reads past the input as the file's holes)."""
import struct, sys, os

CHUNK_WORDS = 4096
TABLE_OFF = 36864

def rup(v, to): return (v + to - 1) // to * to

def families(defs):
    body = b""
    for kind, mode, name, help_, labels, bounds in defs:
        rec = b""
        for s in [name, help_] + labels:
            rec += struct.pack("<I", len(s)) + s.encode()
        rec += b"".join(struct.pack("<d", b) for b in bounds)
        total = rup(16 + len(rec), 8)
        rec = struct.pack("<IBBHII", total, kind, mode, 0, len(labels), len(bounds)) + rec
        body += rec + b"\0" * (total - len(rec))
    head = b"CMFAMS\0\1" + struct.pack("<IIQ", 1, len(defs), len(body))
    return head + b"\0" * (64 - len(head)) + body

def slot(series, slot_index=0, compact_folded=None, threads=1, dir_cap=4096):
    max_chunks = 1 + threads
    dir_off = TABLE_OFF + rup(16 * max_chunks, 4096)
    chunks_off = dir_off + rup(dir_cap, 4096)
    file_bytes = chunks_off + max_chunks * CHUNK_WORDS * 8
    d = b""
    base = [0] * CHUNK_WORDS
    cells = [[0] * CHUNK_WORDS for _ in range(threads)]
    word = 0
    for family, values, payload, ndoubles in series:
        width = len(payload) + 1
        rec = b"".join(struct.pack("<I", len(v)) + v.encode() for v in values)
        total = rup(32 + len(rec), 8)
        d += struct.pack("<IIIIHHB3xQ", total, family, word, width, ndoubles, len(values), 0xFF, 0) + rec
        d += b"\0" * (total - 32 - len(rec))
        base[word] = 1
        for t in range(threads):
            cells[t][word] = 1
            for i, p in enumerate(payload):
                cells[t][word + 1 + i] = p
        word += width
    nchunks = 1 + threads
    hdr = b"CMSLOT\0\1" + struct.pack("<IIII", 1, slot_index, CHUNK_WORDS, max_chunks)
    hdr += struct.pack("<QQQQQ", TABLE_OFF, dir_off, dir_cap, chunks_off, file_bytes)
    hdr += struct.pack("<QQQQ", 0, 1, 4242, len(d)) + struct.pack("<IIQ", 1, nchunks, 0)
    out = bytearray(file_bytes)
    out[:len(hdr)] = hdr
    if compact_folded:
        for i, inc in compact_folded.items():
            out[128 + 8 * i:136 + 8 * i] = struct.pack("<Q", inc)
    table = struct.pack("<IIQ", 1, 0, 0) + b"".join(struct.pack("<IIQ", 2, 0, t + 1) for t in range(threads))
    out[TABLE_OFF:TABLE_OFF + len(table)] = table
    out[dir_off:dir_off + len(d)] = d
    for c, words in enumerate([base] + cells):
        off = chunks_off + c * CHUNK_WORDS * 8
        out[off:off + CHUNK_WORDS * 8] = b"".join(struct.pack("<Q", w & (2**64 - 1)) for w in words)
    return bytes(out).rstrip(b"\0")

def seed(fams, sl):
    return struct.pack("<I", len(fams)) + fams + sl

def main(out):
    os.makedirs(out, exist_ok=True)
    dbl = lambda x: struct.unpack("<Q", struct.pack("<d", x))[0]
    fams = families([(0, 0, "requests_total", "Requests.", ["code"], []),
                     (1, 3, "inflight", "In flight.", [], []),
                     (2, 0, "latency_seconds", "Latency.", ["op"], [0.1, 1.0])])
    s = slot([(0, ["200"], [0, 5], 1), (0, ["500"], [dbl(0.5), 1], 1), (1, [], [0, 3], 1),
              (2, ["get"], [dbl(0.25), 1, 2, 0], 1)], threads=2)
    open(os.path.join(out, "slot_two_threads"), "wb").write(seed(fams, s))
    c = slot([(0, ["200"], [0, 9], 1)], slot_index=0xFFFFFFFF, compact_folded={0: 3, 2: 1}, threads=0)
    open(os.path.join(out, "compact"), "wb").write(seed(fams, c))
    open(os.path.join(out, "empty_slot"), "wb").write(seed(families([]), slot([], threads=0)))

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "shared_slot", "corpus"))
