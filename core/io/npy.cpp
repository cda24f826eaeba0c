// NumPy .npy export (format version 1.0), so tensors can be inspected with numpy.load.
#include <stdexcept>
#include <string>
#include <vector>

#include "core/io/io.h"

#include "core/backend/kernels.h"
#include "core/io/atomic_file.h"

namespace plateau::io {

namespace {

const char* npy_descr(DType t) {
  switch (t) {
    case DType::f32: return "<f4";
    case DType::f64: return "<f8";
    case DType::i64: return "<i8";
    case DType::b8: return "|b1";  // one byte: no byte order
  }
  return "?";
}

// Python's repr of the shape tuple, as numpy writes it: "()", "(3,)", "(2, 3)".
std::string shape_tuple(const Shape& shape) {
  std::string s = "(";
  for (int64_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

}  // namespace

// Layout: "\x93NUMPY", version 1.0, u16 little-endian header length H, H bytes of a Python dict
// literal padded with spaces and ended by '\n' so that 10 + H is a multiple of 64 (aligned data),
// then the elements in C order.
void save_npy(const std::string& path, const Tensor& t) {
  if (!t.defined()) throw std::invalid_argument("plateau: save_npy: " + path + ": the tensor is undefined");
  if (!t.device().is_cpu())
    throw std::invalid_argument("plateau: save_npy: " + path + ": the tensor is on " + t.device().str() +
                                "; move it to the CPU before saving");
  Tensor c = kernels::dense(t);
  std::string dict = std::string("{'descr': '") + npy_descr(c.dtype()) +
                     "', 'fortran_order': False, 'shape': " + shape_tuple(c.shape()) + ", }";
  const size_t prefix = 10;             // magic (6) + version (2) + header length (2)
  size_t header_len = dict.size() + 1;  // + '\n'
  header_len += (64 - (prefix + header_len) % 64) % 64;
  std::string header(prefix, '\0');
  header.replace(0, 6, "\x93NUMPY");
  header[6] = 1;  // major version
  header[7] = 0;  // minor version
  header[8] = static_cast<char>(header_len & 0xff);
  header[9] = static_cast<char>(header_len >> 8);  // at most 8 dims: far below the 65535 limit
  header += dict;
  header.append(header_len - dict.size() - 1, ' ');
  header += '\n';

  std::vector<std::pair<const void*, size_t>> pieces = {{header.data(), header.size()}};
  if (c.numel() > 0) pieces.emplace_back(c.raw_data(), static_cast<size_t>(c.numel()) * element_size(c.dtype()));
  detail::write_file_atomically(path, "save_npy", pieces);
}

}  // namespace plateau::io
