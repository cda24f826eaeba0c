#pragma once
// Serialization: safetensors (read and write) and .npy (write). Files are written atomically
// (to a temporary name, then renamed), so an interrupted run never leaves a torn file.
#include <map>
#include <string>

#include "core/tensor.h"

namespace plateau::io {

using TensorMap = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

// The format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets}, "__metadata__": {...}}, then the raw little-endian data. dtypes F32, F64, I64, BOOL.
void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {});
// Throws std::runtime_error naming the file and what is wrong on a malformed file (offsets past the
// end, overlapping or gapped ranges, a header longer than the file, bad JSON, unknown dtype, ...).
TensorMap load_safetensors(const std::string& path, Metadata* metadata = nullptr);

// NumPy .npy (format version 1.0, little-endian, C order).
void save_npy(const std::string& path, const Tensor& t);

}  // namespace plateau::io
