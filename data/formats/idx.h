#pragma once
// IDX files (MNIST, Fashion-MNIST; LeCun et al.), raw or gzip-compressed (detected by the magic
// bytes 1f 8b). The format: a big-endian 32-bit magic 0x0000TTDD (TT = 0x08, unsigned bytes; DD =
// the number of dimensions), DD big-endian 32-bit sizes, then the data in row-major order.
//   images: magic 0x00000803, sizes N, rows, cols → f32 [N, 1, rows, cols], pixel / 255.
//   labels: magic 0x00000801, size N → i64 [N].
// A malformed file (wrong magic, a header claiming more or less data than the file holds, a
// truncated or corrupt gzip stream) throws FormatError naming the file and the byte offset before
// anything the header claims is allocated.
#include <cstdint>
#include <span>
#include <string>

#include "core/tensor.h"
#include "data/dataset.h"

namespace plateau::data {

Tensor read_idx_images(const std::string& path);
Tensor read_idx_labels(const std::string& path);
// The same from bytes in memory; `name` stands for the file in error messages.
Tensor parse_idx_images(std::span<const uint8_t> bytes, const std::string& name = "<memory>");
Tensor parse_idx_labels(std::span<const uint8_t> bytes, const std::string& name = "<memory>");

// An image file and its label file; their counts must agree, and with num_classes > 0 every label
// must lie in [0, num_classes).
TensorDataset load_idx(const std::string& images_path, const std::string& labels_path, int64_t num_classes = 0);

}  // namespace plateau::data
