#!/usr/bin/env python3
"""Writes small valid seed inputs for the checkpoint fuzz targets.

usage: make_seeds.py OUT_DIR   -> OUT_DIR/{gguf,safetensors,llama2c}/seed_*
Seeds are tiny (< 4 KiB) so libFuzzer's default max_len keeps mutations fast.
"""
import json
import os
import struct
import sys


def gguf(version=3, alignment=32, nested=True):
    kv = []

    def s(x):
        b = x.encode()
        return struct.pack('<Q', len(b)) + b

    def add(key, type_id, payload):
        kv.append(s(key) + struct.pack('<I', type_id) + payload)

    add('general.architecture', 8, s('llama'))
    if alignment != 32:
        add('general.alignment', 4, struct.pack('<I', alignment))
    add('llama.block_count', 4, struct.pack('<I', 1))
    add('llama.attention.layer_norm_rms_epsilon', 6, struct.pack('<f', 1e-5))
    add('t.bool', 7, b'\x01')
    add('t.i64', 11, struct.pack('<q', -5))
    add('t.f64', 12, struct.pack('<d', 0.5))
    add('tokenizer.ggml.tokens', 9, struct.pack('<IQ', 8, 3) + s('<unk>') + s('a') + s('bc'))
    add('tokenizer.ggml.scores', 9, struct.pack('<IQ', 6, 3) + struct.pack('<3f', 0, -1, -2))
    add('tokenizer.ggml.token_type', 9, struct.pack('<IQ', 5, 3) + struct.pack('<3i', 2, 1, 1))
    if nested:
        inner = struct.pack('<IQ', 0, 2) + b'\x01\x02'
        add('t.nested', 9, struct.pack('<IQ', 9, 2) + inner + inner)
    tensors = [('token_embd.weight', 0, [4, 3]), ('blk.0.attn_q.weight', 1, [4, 4]),
               ('q8', 8, [32, 2]), ('q4_0', 2, [32]), ('q4_1', 3, [32]), ('bf', 30, [2]),
               ('k', 12, [256])]
    sizes = {0: (1, 4), 1: (1, 2), 8: (32, 34), 2: (32, 18), 3: (32, 20), 30: (1, 2), 12: (256, 144)}
    infos, data, off = b'', b'', 0
    for name, t, ne in tensors:
        n = 1
        for d in ne:
            n *= d
        blk, size = sizes[t]
        nbytes = n // blk * size
        infos += s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', d) for d in ne)
        infos += struct.pack('<IQ', t, off)
        chunk = bytes((i * 13 + 5) & 0xff for i in range(nbytes))
        chunk += b'\0' * (-len(chunk) % alignment)
        data += chunk
        off += len(chunk)
    head = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kv)) + b''.join(kv) + infos
    head += b'\0' * (-len(head) % alignment)
    return head + data


def safetensors(entries, metadata=None):
    header, data = {}, b''
    if metadata:
        header['__metadata__'] = metadata
    for name, dtype, shape, size in entries:
        n = size
        for d in shape:
            n *= d
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(data), len(data) + n]}
        data += bytes((i * 7 + 1) & 0xff for i in range(n))
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + data


def llama2c(dim=8, hidden=12, layers=2, heads=4, kv=2, vocab=10, seq=4, tied=True, version=0):
    kv_dim = dim // heads * kv
    floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * hidden * dim) + dim
    if version == 0:
        floats += 2 * seq * (dim // heads // 2)
    if not tied:
        floats += vocab * dim
    params = struct.pack('<7i', dim, hidden, layers, heads, kv, vocab if (tied or version) else -vocab, seq)
    if version == 1:
        head = struct.pack('<Ii', 0x616b3432, 1) + params + bytes([1 if tied else 0])
        head += b'\0' * (256 - len(head))
    else:
        head = params
    return head + struct.pack(f'<{floats}f', *[float(i % 97) for i in range(floats)])


def main():
    out = sys.argv[1]
    seeds = {
        'gguf': [gguf(), gguf(version=2), gguf(alignment=64, nested=False)],
        'safetensors': [
            safetensors([('a', 'F32', [2, 3], 4), ('b', 'F16', [4], 2), ('c', 'BF16', [2], 2)],
                        {'format': 'pt'}),
            safetensors([('ids', 'I64', [2], 8), ('w', 'F32', [1, 1, 2], 4), ('u', 'U8', [3], 1)]),
        ],
        'llama2c': [llama2c(), llama2c(tied=False), llama2c(version=1), llama2c(version=1, tied=False)],
    }
    for kind, blobs in seeds.items():
        os.makedirs(os.path.join(out, kind), exist_ok=True)
        for i, b in enumerate(blobs):
            with open(os.path.join(out, kind, f'seed_{i}'), 'wb') as f:
                f.write(b)


if __name__ == '__main__':
    main()
