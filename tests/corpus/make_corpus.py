#!/usr/bin/python3
"""Writes the malformed safetensors files in this folder (see README.md for what each exercises).

Deterministic: running it twice gives identical files. Run from anywhere:
    /usr/bin/python3 tests/corpus/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def raw(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def with_header(name, header_text, data=b"", length=None):
    """8-byte length, header text (str or bytes, not padded), data; `length` overrides the prefix."""
    h = header_text.encode("utf-8") if isinstance(header_text, str) else header_text
    n = len(h) if length is None else length
    raw(name, struct.pack("<Q", n) + h + data)


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def st(name, header, data=b""):
    with_header(name, json.dumps(header, separators=(",", ":")), data)


F32_3 = struct.pack("<3f", 1.0, 2.0, 3.0)  # 12 bytes

raw("short.safetensors", b"\x05\x00\x00")
with_header("header_too_long.safetensors", '{"a":1}', length=1000)
with_header("bad_json.safetensors", '{"a": {"dtype": "F32", "shape": [3] "data_offsets": [0, 12]}}', F32_3)
with_header("bad_utf8.safetensors", b'{"\xff\xfe": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}', F32_3)
with_header("empty_header.safetensors", "")
st("not_object.safetensors", [1, 2, 3])
st("entry_not_object.safetensors", {"a": 5})
st("missing_dtype.safetensors", {"a": {"shape": [3], "data_offsets": [0, 12]}}, F32_3)
st("missing_shape.safetensors", {"a": {"dtype": "F32", "data_offsets": [0, 12]}}, F32_3)
st("missing_offsets.safetensors", {"a": {"dtype": "F32", "shape": [3]}}, F32_3)
st("dtype_not_string.safetensors", {"a": {"dtype": 32, "shape": [3], "data_offsets": [0, 12]}}, F32_3)
st("shape_not_array.safetensors", {"a": {"dtype": "F32", "shape": "3", "data_offsets": [0, 12]}}, F32_3)
st("shape_float.safetensors", {"a": {"dtype": "F32", "shape": [1.5, 2], "data_offsets": [0, 12]}}, F32_3)
st("unknown_dtype.safetensors", {"a": entry("Q7", [3], 0, 12)}, F32_3)
st("f16.safetensors", {"a": entry("F16", [2], 0, 4)}, b"\x00\x3c\x00\x40")
st("negative_dim.safetensors", {"a": entry("F32", [3, -1], 0, 12)}, F32_3)
st("too_many_dims.safetensors", {"a": entry("F32", [1] * 9, 0, 4)}, F32_3[:4])
st("huge_shape.safetensors", {"a": entry("F32", [2 ** 40, 2 ** 40], 0, 12)}, F32_3)
st("offsets_not_pair.safetensors", {"a": {"dtype": "F32", "shape": [3], "data_offsets": [12]}}, F32_3)
st("offsets_negative.safetensors", {"a": entry("F32", [3], -4, 8)}, F32_3)
st("offsets_reversed.safetensors", {"a": entry("F32", [3], 12, 0)}, F32_3)
st("offset_past_end.safetensors", {"a": entry("F32", [3], 0, 12)}, F32_3[:8])
st("size_mismatch.safetensors", {"a": entry("F32", [3], 0, 8)}, F32_3[:8])
st("overlap.safetensors", {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, F32_3)
st("gap.safetensors", {"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, F32_3)
st("trailing_bytes.safetensors", {"a": entry("F32", [2], 0, 8)}, F32_3)
# json.dumps cannot write a repeated key, so these two headers are spelled out.
with_header("duplicate_name.safetensors",
            '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            '"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', F32_3)
with_header("duplicate_field.safetensors",
            '{"a":{"dtype":"F32","shape":[3],"shape":[1],"data_offsets":[0,12]}}', F32_3)
st("metadata_not_string.safetensors", {"__metadata__": {"epoch": 3}, "a": entry("F32", [3], 0, 12)}, F32_3)
st("metadata_not_object.safetensors", {"__metadata__": "v1", "a": entry("F32", [3], 0, 12)}, F32_3)
st("bad_bool.safetensors", {"m": entry("BOOL", [3], 0, 3)}, b"\x01\x00\x02")
