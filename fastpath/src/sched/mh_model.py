#!/usr/bin/env python3
"""Independent model of IPVS Maglev hashing (ip_vs_mh.c) on 64-bit kernels.

Regenerates the expected values of the unit tests in mh.rs. SipHash is
written here from the SipHash paper, not from the Rust code, and checked
first against CPython's own SipHash-1-3 (PYTHONHASHSEED=0 gives an all-zero
key) and the kernel's hsiphash self-test vectors (lib/siphash_kunit.c).

    python3 fastpath/src/sched/mh_model.py
"""
import ipaddress
import os
import subprocess
import sys
from math import gcd

M64 = (1 << 64) - 1


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def sipround(v0, v1, v2, v3):
    v0 = (v0 + v1) & M64; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
    v2 = (v2 + v3) & M64; v3 = rotl(v3, 16); v3 ^= v2
    v0 = (v0 + v3) & M64; v3 = rotl(v3, 21); v3 ^= v0
    v2 = (v2 + v1) & M64; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    return v0, v1, v2, v3


def siphash(k0, k1, data, c, d):
    v = (k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573)
    n = len(data)
    full = n - n % 8
    for off in range(0, full, 8):
        m = int.from_bytes(data[off:off + 8], 'little')
        v = (v[0], v[1], v[2], v[3] ^ m)
        for _ in range(c):
            v = sipround(*v)
        v = (v[0] ^ m, v[1], v[2], v[3])
    b = ((n & 0xFF) << 56) | int.from_bytes(data[full:], 'little')
    v = (v[0], v[1], v[2], v[3] ^ b)
    for _ in range(c):
        v = sipround(*v)
    v = (v[0] ^ b, v[1], v[2] ^ 0xFF, v[3])
    for _ in range(d):
        v = sipround(*v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def self_check():
    for n in (1, 4, 7, 8, 9, 15, 16, 33):
        out = subprocess.check_output(
            [sys.executable, '-c', f'print(hash(bytes(range({n}))) % 2**64)'],
            env=dict(os.environ, PYTHONHASHSEED='0'))
        assert siphash(0, 0, bytes(range(n)), 1, 3) == int(out), n
    k = (0x0706050403020100, 0x0F0E0D0C0B0A0908)
    assert siphash(*k, bytes(range(15)), 2, 4) == 0xA129CA6149BE45E5
    assert siphash(*k, bytes(range(4)), 1, 3) & 0xFFFFFFFF == 0x88D38328
    assert siphash(*k, bytes(range(63)), 1, 3) & 0xFFFFFFFF == 0xB7BBB3A8


KEY1 = (2654435761, 2654435761)
KEY2 = (2654446892, 2654446892)
M = 4093  # CONFIG_IP_VS_MH_TAB_INDEX 12


def hashkey(addr, port, key, offset):
    v = (offset + port + int(ipaddress.IPv4Address(addr))) & 0xFFFFFFFF
    return siphash(key[0], key[1], v.to_bytes(4, 'little'), 1, 3) & 0xFFFFFFFF


def build(servers):
    """servers: [(addr, port, last_weight)] in IPVS list order."""
    g = 0
    for _, _, w in servers:
        if w > 0:
            g = gcd(g, w)
    if g == 0:
        return [None] * M
    shift = max(0, (max(w for _, _, w in servers) // g).bit_length() - 6)
    turns = [((w // g) >> shift) or (1 if w else 0) for _, _, w in servers]
    perm = [hashkey(a, p, KEY1, 0) % M for a, p, _ in servers]
    skip = [hashkey(a, p, KEY2, 0) % (M - 1) + 1 for a, p, _ in servers]
    table = [None] * M
    filled = 0
    while True:
        for i in range(len(servers)):
            for _ in range(turns[i]):
                while table[perm[i]] is not None:
                    perm[i] = (perm[i] + skip[i]) % M
                table[perm[i]] = i
                filled += 1
                if filled == M:
                    return table


def lookup(table, src, port, bad=frozenset(), fallback=False):
    ih = hashkey(src, port, KEY1, 0) % M
    d = table[ih]
    if d is None or d not in bad:
        return d
    if not fallback:
        return None
    for off in range(M):
        d = table[hashkey(src, port, KEY1, (off + ih) % M) % M]
        if d is None or d not in bad:
            return d
    return None


def main():
    self_check()
    rs = [('10.0.0.1', 80, 1), ('10.0.0.2', 80, 1), ('10.0.0.3', 80, 2)]
    t = build(rs)
    srcs = ['192.0.2.%d' % i for i in range(1, 9)]
    print('h1', [hex(hashkey(a, p, KEY1, 0)) for a, p, _ in rs])
    print('h2', [hex(hashkey(a, p, KEY2, 0)) for a, p, _ in rs])
    print('offset/skip', [(hashkey(a, p, KEY1, 0) % M, hashkey(a, p, KEY2, 0) % (M - 1) + 1)
                          for a, p, _ in rs])
    print('first 16 slots', t[:16])
    print('slots per server', [t.count(i) for i in range(3)])
    print('source slots', [hashkey(s, 0, KEY1, 0) % M for s in srcs])
    print('lookup', [lookup(t, s, 0) for s in srcs])
    print('lookup, mh-port 12345', [lookup(t, s, 12345) for s in srcs])
    print('fallback, C down', [lookup(t, s, 0, {2}, True) for s in srcs])
    print('fallback, A and C down', [lookup(t, s, 0, {0, 2}, True) for s in srcs])
    t2 = build([rs[0], rs[2]])
    print('other slots moved when B goes',
          sum(1 for a, b in zip(t, t2) if a != 1 and {0: 0, 2: 1}[a] != b))
    t3 = build([('10.0.0.1', 80, 128), ('10.0.0.2', 80, 1)])
    print('weights 128, 1', [t3.count(i) for i in range(2)])
    t4 = build([('10.0.0.1', 80, 1000), ('10.0.0.2', 80, 3000), ('10.0.0.3', 80, 0)])
    print('weights 1000, 3000, 0', [t4.count(i) for i in range(3)], t4[:8])


if __name__ == '__main__':
    main()
