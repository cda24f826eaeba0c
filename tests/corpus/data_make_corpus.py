#!/usr/bin/python3
"""Writes the malformed data-format files tests/corpus/data_* (see data_corpus.md) and the fuzzers'
seed inputs data/fuzz/seeds/*.

Deterministic (gzip with mtime 0): running it twice gives identical files. Run from anywhere:
    /usr/bin/python3 tests/corpus/data_make_corpus.py
"""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEEDS = os.path.join(ROOT, "data", "fuzz", "seeds")


def write(path, data):
    if isinstance(data, str):
        data = data.encode()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def raw(name, data):
    write(os.path.join(HERE, name), data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def idx_images(n, rows, cols, pixels=None, claim_n=None):
    header = struct.pack(">IIII", 0x00000803, n if claim_n is None else claim_n, rows, cols)
    body = bytes((i * 7) % 256 for i in range(n * rows * cols)) if pixels is None else pixels
    return header + body


def idx_labels(labels, claim_n=None):
    return struct.pack(">II", 0x00000801, len(labels) if claim_n is None else claim_n) + bytes(labels)


def cifar_record(labels, seed=0):
    return bytes(labels) + bytes((i * 13 + seed) % 256 for i in range(3072))


def digits_line(features, label):
    return ",".join(str(v) for v in list(features) + [label]) + "\n"


GOOD_ROW = [(i * 5) % 17 for i in range(64)]

# IDX
raw("data_idx_short_header.idx", struct.pack(">I", 0x00000803) + b"\x00\x00")
raw("data_idx_label_magic.idx", idx_labels([1, 2, 3]))  # loaded as an image file
raw("data_idx_bad_magic.idx", struct.pack(">IIII", 0x12345678, 1, 2, 2) + b"\x00" * 4)
raw("data_idx_claims_more.idx", idx_images(2, 28, 28, claim_n=1000))
raw("data_idx_trailing.idx", idx_images(2, 4, 4) + b"\x00" * 10)
raw("data_idx_overflow.idx", struct.pack(">IIII", 0x00000803, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF))
raw("data_idx_labels_claims_more.idx", idx_labels([1, 2, 3], claim_n=60000))
good_images = idx_images(3, 8, 8)
raw("data_idx_truncated.gz", gz(good_images)[:40])
raw("data_idx_gz_claims_more.gz", gz(idx_images(2, 28, 28, claim_n=100000)))
raw("data_idx_gz_short.gz", gz(idx_images(2, 28, 28, claim_n=3)))
raw("data_idx_gz_trailing.gz", gz(idx_images(2, 4, 4) + b"\x07" * 5))
corrupt = bytearray(gz(good_images))
corrupt[-8] ^= 0xFF  # first byte of the CRC-32 in the gzip trailer
raw("data_idx_gz_bad_crc.gz", bytes(corrupt))
raw("data_idx_gz_garbage_after.gz", gz(good_images) + b"junk")
# A pair whose counts disagree: 3 images, 2 labels.
raw("data_idx_pair_images.idx", idx_images(3, 4, 4))
raw("data_idx_pair_labels.idx", idx_labels([0, 1]))

# CIFAR
raw("data_cifar10_partial.bin", cifar_record([3]) + cifar_record([4], 1) + b"\x01" * 100)
raw("data_cifar10_label.bin", cifar_record([3]) + cifar_record([10], 1))
raw("data_cifar100_coarse.bin", cifar_record([5, 50]) + cifar_record([20, 60], 1))
raw("data_cifar100_fine.bin", cifar_record([5, 50]) + cifar_record([19, 100], 1))
raw("data_cifar_empty.bin", b"")

# digits CSV
raw("data_digits_short_line.csv", digits_line(GOOD_ROW, 3) + digits_line(GOOD_ROW[:63], 4))
raw("data_digits_long_line.csv", digits_line(GOOD_ROW, 3) + digits_line(GOOD_ROW + [1], 4))
raw("data_digits_not_number.csv", digits_line(GOOD_ROW[:10], 0).replace("\n", "") + ",x" + "\n")
raw("data_digits_fraction.csv", digits_line(GOOD_ROW[:5] + ["2.5"] + GOOD_ROW[6:], 1))
raw("data_digits_feature_range.csv", digits_line(GOOD_ROW[:7] + [17] + GOOD_ROW[8:], 1))
raw("data_digits_label_range.csv", digits_line(GOOD_ROW, 2) + digits_line(GOOD_ROW, 10))
raw("data_digits_empty.csv", b"")
raw("data_digits_truncated.csv.gz", gz("".join(digits_line(GOOD_ROW, i % 10) for i in range(20)).encode())[:60])

# Fuzzer seeds: small valid inputs of each format.
write(os.path.join(SEEDS, "idx", "images.idx"), idx_images(2, 3, 3))
write(os.path.join(SEEDS, "idx", "labels.idx"), idx_labels([0, 9, 4]))
write(os.path.join(SEEDS, "idx", "images.idx.gz"), gz(idx_images(2, 3, 3)))
write(os.path.join(SEEDS, "cifar", "cifar10.bin"), cifar_record([7]))
write(os.path.join(SEEDS, "cifar", "cifar100.bin"), cifar_record([3, 33]))
write(os.path.join(SEEDS, "csv", "digits.csv"), (digits_line(GOOD_ROW, 3) + digits_line(GOOD_ROW[::-1], 9)).encode())
write(os.path.join(SEEDS, "csv", "small.csv"), b"1,2,3\n4,5,6\r\n")
write(os.path.join(SEEDS, "csv", "small.csv.gz"), gz(b"1,2,3\n4,5,6\n"))
