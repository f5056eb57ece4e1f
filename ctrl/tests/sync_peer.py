#!/usr/bin/env python3
"""An IPVS sync peer written from the kernel's C, to check ripvs's codec
against something that did not come from it.

Sources: net/netfilter/ipvs/ip_vs_sync.c (ip_vs_sync_conn,
ip_vs_sync_conn_v0, ip_vs_process_message, ip_vs_proc_sync_conn,
ip_vs_process_message_v0, ip_vs_conn_fill_param_sync), include/uapi/linux/
ip_vs.h (flags, name lengths), include/net/ip_vs.h (state counts),
ip_vs_proto_ah_esp.c (AH and ESP: one state each). Only `struct` is used
to build and read bytes.

    sync_peer.py encode          one JSON message description per stdin
                                 line -> one hex message per line
    sync_peer.py decode [--syncid N]
                                 one hex message per stdin line -> one JSON
                                 object per line

A description: {"version": 0|1, "syncid": N, "records": [RECORD, ...]};
a RECORD has proto, flags, state, cport, vport, dport, fwmark, timeout
(seconds), caddr, vaddr, daddr (dotted IPv4, or IPv6 with "af": 6),
optionally in_seq and out_seq ([init_seq, delta, previous_delta]),
pe_data (hex) and pe_name (string), and "extra_options": [[type, hex],
...] appended after the kernel's options (to build what no kernel sends).
Missing numbers are 0. Records are encoded as the kernel master encodes
them: HASHED cleared, the sequence option iff the flags have IN_SEQ or
OUT_SEQ (zeros if not given), PE data only if non-empty and the PE name
only with it, cut to 16 bytes; v0 drops IPv6 records, fwmark, timeout and
PE, keeps 16 bits of flags and copies the sequence data in host byte order
(little-endian here, as on x86 and arm64).

Decoding follows ip_vs_process_message. The output is either
{"reject": NAME} (the whole datagram is dropped) or {"version", "syncid",
"size", "nr_conns", "records", "error"}: "records" lists every record the
kernel got to, each with its fields and a "status", "ok" if the kernel
installs it or the reason it passes over it and goes on; "error" (or null)
names why the kernel dropped the rest of the datagram. The decoder models a
kernel with IPv6 support and no persistence-engine module loaded. A
datagram of 4 to 7 bytes is read as v0 (the kernel reads its v1 header
fields from beyond the datagram; either way no record fits).
"""

import json
import socket
import struct
import sys

# include/uapi/linux/ip_vs.h
IP_VS_CONN_F_HASHED = 0x0040
IP_VS_CONN_F_OUT_SEQ = 0x0200
IP_VS_CONN_F_IN_SEQ = 0x0400
IP_VS_CONN_F_SEQ_MASK = 0x0600
IP_VS_CONN_F_TEMPLATE = 0x1000
IP_VS_PENAME_MAXLEN = 16
IP_VS_PEDATA_MAXLEN = 255

# ip_vs_sync.c
SYNC_PROTO_VER = 1
STYPE_F_INET6 = 1
SVER_SHIFT = 12
SVER_MASK = 0x0FFF
IPVS_OPT_SEQ_DATA = 1
IPVS_OPT_PE_DATA = 2
IPVS_OPT_PE_NAME = 3
IPVS_OPT_PARAM = 7
IPVS_OPT_F_PARAM = 1 << (IPVS_OPT_PARAM - 1)

MESG_V0 = struct.Struct("!BBH")  # nr_conns, syncid, size
MESG = struct.Struct("!BBHBbH")  # reserved, syncid, size, nr_conns, version, spare
CONN_V0 = struct.Struct("!BBHHH4s4s4sHH")  # 24 bytes
SYNC_V4_HEAD = struct.Struct("!BBHIHHHHII")  # type .. timeout: 24 bytes
SEQ_NET = struct.Struct("!III")
SEQ_HOST = struct.Struct("<III")
SIZEOF_SYNC_V4 = SYNC_V4_HEAD.size + 3 * 4
SIZEOF_SYNC_V6 = SYNC_V4_HEAD.size + 3 * 16
SIZEOF_OPTIONS = 2 * SEQ_NET.size
SIMPLE_CONN_SIZE = CONN_V0.size
FULL_CONN_SIZE = SIMPLE_CONN_SIZE + SIZEOF_OPTIONS

# ip_vs_proto_get() for a kernel built with TCP, UDP, SCTP, AH and ESP:
# protocol -> num_states (IP_VS_TCP_S_LAST, IP_VS_UDP_S_LAST,
# IP_VS_SCTP_S_LAST, 1, 1).
PROTOCOLS = {6: 11, 17: 1, 132: 14, 50: 1, 51: 1}
# Persistence engines loaded: none.
PE_LOADED = set()


def addr(text, af):
    return socket.inet_pton(socket.AF_INET6 if af == 6 else socket.AF_INET, text)


def seq_values(r, key):
    v = r.get(key) or [0, 0, 0]
    return [x & 0xFFFFFFFF for x in v]


# ---------------------------------------------------------------- encoding


def encode_v1(desc):
    records = desc.get("records", [])
    buf = bytearray(MESG.size)
    for r in records:
        af = r.get("af", 4)
        flags = r.get("flags", 0)
        pe_data = bytes.fromhex(r.get("pe_data", ""))
        pe_name = r.get("pe_name", "").encode()[:IP_VS_PENAME_MAXLEN] if pe_data else b""
        extra = [(t, bytes.fromhex(d)) for t, d in r.get("extra_options", [])]

        length = SIZEOF_SYNC_V6 if af == 6 else SIZEOF_SYNC_V4
        if flags & IP_VS_CONN_F_SEQ_MASK:
            length += SIZEOF_OPTIONS + 2
        if pe_data:
            length += len(pe_data) + 2
        if pe_name:
            length += len(pe_name) + 2
        length += sum(2 + len(d) for _, d in extra)

        # Padding from the previous record, counted in the message size.
        pad = (4 - len(buf)) & 3
        buf += bytes(pad)
        buf += SYNC_V4_HEAD.pack(
            STYPE_F_INET6 if af == 6 else 0,
            r.get("proto", 0),
            length & SVER_MASK,
            flags & ~IP_VS_CONN_F_HASHED & 0xFFFFFFFF,
            r.get("state", 0),
            r.get("cport", 0),
            r.get("vport", 0),
            r.get("dport", 0),
            r.get("fwmark", 0),
            r.get("timeout", 0),
        )
        for k in ("caddr", "vaddr", "daddr"):
            buf += addr(r[k], af)
        if flags & IP_VS_CONN_F_SEQ_MASK:
            buf += bytes([IPVS_OPT_SEQ_DATA, SIZEOF_OPTIONS])
            buf += SEQ_NET.pack(*seq_values(r, "in_seq"))
            buf += SEQ_NET.pack(*seq_values(r, "out_seq"))
        if pe_data:
            buf += bytes([IPVS_OPT_PE_DATA, len(pe_data)]) + pe_data
            if pe_name:
                buf += bytes([IPVS_OPT_PE_NAME, len(pe_name)]) + pe_name
        for t, d in extra:
            buf += bytes([t, len(d)]) + d
    MESG.pack_into(buf, 0, 0, desc.get("syncid", 0), len(buf), len(records), SYNC_PROTO_VER, 0)
    return bytes(buf)


def encode_v0(desc):
    records = [r for r in desc.get("records", []) if r.get("af", 4) == 4]
    buf = bytearray(MESG_V0.size)
    for r in records:
        flags = r.get("flags", 0)
        buf += CONN_V0.pack(
            0,
            r.get("proto", 0),
            r.get("cport", 0),
            r.get("vport", 0),
            r.get("dport", 0),
            addr(r["caddr"], 4),
            addr(r["vaddr"], 4),
            addr(r["daddr"], 4),
            flags & ~IP_VS_CONN_F_HASHED & 0xFFFF,
            r.get("state", 0),
        )
        if flags & IP_VS_CONN_F_SEQ_MASK:
            buf += SEQ_HOST.pack(*seq_values(r, "in_seq"))
            buf += SEQ_HOST.pack(*seq_values(r, "out_seq"))
    MESG_V0.pack_into(buf, 0, len(records), desc.get("syncid", 0), len(buf))
    return bytes(buf)


def encode(desc):
    return encode_v0(desc) if desc.get("version", 1) == 0 else encode_v1(desc)


# ---------------------------------------------------------------- decoding


class Drop(Exception):
    """A negative return of ip_vs_proc_sync_conn: the rest is dropped."""


def semantic_status(proto, flags, state):
    if not flags & IP_VS_CONN_F_TEMPLATE:
        if proto not in PROTOCOLS:
            return "protocol"
        if state >= PROTOCOLS[proto]:
            return "state"
    return None


def proc_sync_conn(buf, p, msg_end):
    """ip_vs_proc_sync_conn: (record, status) or Drop(reason)."""
    kind = buf[p]
    if kind & STYPE_F_INET6:
        af, fixed, alen = 6, SIZEOF_SYNC_V6, 16
    elif kind == 0:
        af, fixed, alen = 4, SIZEOF_SYNC_V4, 4
    else:
        raise Drop("record_type")
    q = p + fixed
    if q > msg_end:
        raise Drop("record_size")

    (_, proto, ver_size, flags, state, cport, vport, dport, fwmark, timeout) = SYNC_V4_HEAD.unpack_from(buf, p)
    a = p + SYNC_V4_HEAD.size
    family = socket.AF_INET6 if af == 6 else socket.AF_INET
    rec = {
        "af": af,
        "type": kind,
        "size": ver_size & SVER_MASK,
        "proto": proto,
        "flags": flags,
        "state": state,
        "cport": cport,
        "vport": vport,
        "dport": dport,
        "fwmark": fwmark,
        "timeout": timeout,
        "caddr": socket.inet_ntop(family, buf[a : a + alen]),
        "vaddr": socket.inet_ntop(family, buf[a + alen : a + 2 * alen]),
        "daddr": socket.inet_ntop(family, buf[a + 2 * alen : a + 3 * alen]),
        "seq": None,
        "pe_data": None,
        "pe_name": None,
    }

    seen = set()
    while q < msg_end:
        if q + 2 > msg_end:
            raise Drop("option_truncated")
        ptype, plen = buf[q], buf[q + 1]
        q += 2
        if not plen or q + plen > msg_end:
            raise Drop("option_length")
        base = ptype & ~IPVS_OPT_F_PARAM
        data = buf[q : q + plen]
        if base == IPVS_OPT_SEQ_DATA:
            if plen != SIZEOF_OPTIONS:
                raise Drop("option_length")
            if base in seen:
                raise Drop("option_duplicate")
            rec["seq"] = [list(SEQ_NET.unpack_from(data, 0)), list(SEQ_NET.unpack_from(data, 12))]
        elif base == IPVS_OPT_PE_DATA:
            if plen > IP_VS_PEDATA_MAXLEN:
                raise Drop("option_length")
            if base in seen:
                raise Drop("option_duplicate")
            rec["pe_data"] = data.hex()
        elif base == IPVS_OPT_PE_NAME:
            if plen > IP_VS_PENAME_MAXLEN:
                raise Drop("pe_name_too_long")
            if base in seen:
                raise Drop("option_duplicate")
            rec["pe_name"] = data.hex()
        elif not ptype & IPVS_OPT_F_PARAM:
            # Unknown mandatory parameter: this record only.
            return rec, "option_unknown"
        seen.add(base)
        q += plen

    status = semantic_status(proto, flags, state)
    if status:
        return rec, status
    # ip_vs_conn_fill_param_sync
    if rec["pe_data"] is not None:
        if rec["pe_name"] is None:
            return rec, "pe_without_name"
        name = bytes.fromhex(rec["pe_name"]).split(b"\0")[0]
        if name not in PE_LOADED:
            return rec, "pe_unknown"
    return rec, "ok"


def process_v1(buf, out):
    buflen = len(buf)
    msg_end = MESG.size
    for _ in range(buf[4]):
        p = msg_end
        if p + SIZEOF_SYNC_V4 > buflen:
            return "record_truncated"
        (ver_size,) = struct.unpack_from("!H", buf, p + 2)
        size = ver_size & SVER_MASK
        msg_end = p + size
        if msg_end > buflen:
            return "record_size"
        if ver_size >> SVER_SHIFT:
            return "record_version"
        try:
            rec, status = proc_sync_conn(buf, p, msg_end)
        except Drop as d:
            return d.args[0]
        rec["status"] = status
        out.append(rec)
        msg_end = p + ((size + 3) & ~3)
    return None


def process_v0(buf, out):
    buflen = len(buf)
    p = MESG_V0.size
    for _ in range(buf[0]):
        if p + SIMPLE_CONN_SIZE > buflen:
            return "record_truncated"
        (_, proto, cport, vport, dport, caddr, vaddr, daddr, flags, state) = CONN_V0.unpack_from(buf, p)
        rec = {
            "af": 4,
            "size": SIMPLE_CONN_SIZE,
            "proto": proto,
            "flags": flags,
            "state": state,
            "cport": cport,
            "vport": vport,
            "dport": dport,
            "fwmark": 0,
            "timeout": 0,
            "caddr": socket.inet_ntoa(caddr),
            "vaddr": socket.inet_ntoa(vaddr),
            "daddr": socket.inet_ntoa(daddr),
            "seq": None,
            "pe_data": None,
            "pe_name": None,
        }
        if flags & IP_VS_CONN_F_SEQ_MASK:
            opt = p + SIMPLE_CONN_SIZE
            p += FULL_CONN_SIZE
            if p > buflen:
                return "record_truncated"
            rec["size"] = FULL_CONN_SIZE
            rec["seq"] = [list(SEQ_HOST.unpack_from(buf, opt)), list(SEQ_HOST.unpack_from(buf, opt + 12))]
        else:
            p += SIMPLE_CONN_SIZE
        rec["status"] = semantic_status(proto, flags, state) or "ok"
        out.append(rec)
    return None


def decode(buf, my_syncid=0):
    if len(buf) < MESG_V0.size:
        return {"reject": "too_short"}
    (size,) = struct.unpack_from("!H", buf, 2)
    if len(buf) != size:
        return {"reject": "size_mismatch"}
    syncid = buf[1]
    if my_syncid != 0 and syncid != my_syncid:
        return {"reject": "syncid"}
    v1 = len(buf) >= MESG.size and buf[5] == SYNC_PROTO_VER and buf[0] == 0 and buf[6:8] == b"\0\0"
    records = []
    error = process_v1(buf, records) if v1 else process_v0(buf, records)
    return {
        "version": 1 if v1 else 0,
        "syncid": syncid,
        "size": size,
        "nr_conns": buf[4] if v1 else buf[0],
        "records": records,
        "error": error,
    }


def main(argv):
    if argv[1:] == ["encode"]:
        for line in sys.stdin:
            if line.strip():
                sys.stdout.write(encode(json.loads(line)).hex() + "\n")
        return 0
    if argv[1:2] == ["decode"] and len(argv) in (2, 4):
        syncid = 0
        if len(argv) == 4:
            if argv[2] != "--syncid":
                return usage()
            syncid = int(argv[3])
        # Every line is a datagram, an empty one included, so that output
        # line n answers input line n.
        for line in sys.stdin:
            msg = bytes.fromhex(line.strip())
            sys.stdout.write(json.dumps(decode(msg, syncid), sort_keys=True) + "\n")
        return 0
    return usage()


def usage():
    sys.stderr.write("usage: sync_peer.py encode | decode [--syncid N]  (lines on stdin)\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
