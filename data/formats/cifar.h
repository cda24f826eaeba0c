#pragma once
// CIFAR-10 / CIFAR-100 binary version (Krizhevsky 2009): a file is a sequence of records, each the
// label byte(s) then 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, each plane 32×32 row-major.
//   CIFAR-10:  1 label byte (0..9), records of 3073 bytes (data_batch_1..5.bin, test_batch.bin).
//   CIFAR-100: 2 label bytes, coarse (0..19) then fine (0..99), records of 3074 bytes (train.bin, test.bin).
// Images come out as f32 [N, 3, 32, 32], pixel / 255; labels i64 [N]. A file whose size is not a
// whole number of records, an empty file, or a label out of range throws FormatError naming the
// file and the byte offset. gzip-compressed files are inflated first (offsets then count
// decompressed bytes).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace plateau::data {

enum class CifarVariant { cifar10, cifar100_fine, cifar100_coarse };

int64_t cifar_record_bytes(CifarVariant variant);  // 3073 or 3074
int64_t cifar_num_classes(CifarVariant variant);   // 10, 100 or 20

TensorDataset parse_cifar(std::span<const uint8_t> bytes, CifarVariant variant, const std::string& name = "<memory>");
TensorDataset load_cifar(const std::string& path, CifarVariant variant);
// Several files concatenated in order (CIFAR-10's five training batches).
TensorDataset load_cifar(const std::vector<std::string>& paths, CifarVariant variant);

// The official file names in `dir`: CIFAR-10 data_batch_1..5.bin or test_batch.bin, CIFAR-100
// train.bin or test.bin.
TensorDataset load_cifar_dir(const std::string& dir, CifarVariant variant, bool train);

}  // namespace plateau::data
