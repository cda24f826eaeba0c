// safetensors read/write. The reader trusts nothing in the file: every field is checked before a
// byte of tensor data is read, and each error names the file and the exact problem, because a
// checkpoint that fails to load is usually a truncated download or a file from another tool.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend/kernels.h"
#include "core/io/io.h"

#include "core/io/atomic_file.h"
#include "core/ops/factory.h"

// Tensor bytes are written and read as they sit in memory, which is the file's little-endian order
// only on a little-endian host.
static_assert(std::endian::native == std::endian::little, "plateau io supports little-endian hosts only");

namespace plateau::io {

namespace detail {

void write_file_atomically(const std::string& path, const char* op,
                           const std::vector<std::pair<const void*, size_t>>& pieces) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string& what, int err, bool remove) {
    if (remove) ::unlink(tmp.c_str());
    throw std::runtime_error(std::string("plateau: ") + op + ": " + path + ": " + what + ": " + std::strerror(err));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail("cannot create temporary file " + tmp, errno, false);
  for (const auto& [data, size] : pieces) {
    const char* p = static_cast<const char*>(data);
    size_t left = size;
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = n < 0 ? errno : EIO;
        ::close(fd);
        fail("cannot write temporary file " + tmp, err, true);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    fail("cannot flush temporary file " + tmp, err, true);
  }
  if (::close(fd) != 0) fail("cannot close temporary file " + tmp, errno, true);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename " + tmp + " to it", errno, true);
}

}  // namespace detail

namespace {

using nlohmann::json;

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::b8: return "BOOL";
  }
  return "?";
}

// ------------------------------------------------------------------------------------------- reading

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("plateau: " + path + ": " + what);
}

std::string in_quotes(const std::string& name) { return "'" + name + "'"; }

// Closes the descriptor on every exit path, including the many throws below.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

void read_exactly(int fd, const std::string& path, void* dst, size_t size, uint64_t offset) {
  char* p = static_cast<char*>(dst);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, std::string("read error at byte ") + std::to_string(offset) + ": " + std::strerror(errno));
    if (n == 0)
      fail(path, "unexpected end of file at byte " + std::to_string(offset) + " (was it truncated while loading?)");
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

// Parses the header, rejecting duplicate keys in any object: nlohmann keeps the last value of a
// repeated key silently, which would hide a tensor or a field.
json parse_header(const std::string& path, const std::string& text) {
  struct Level {
    std::set<std::string> keys;
    std::string last_key;
  };
  std::vector<Level> stack;
  std::string duplicate, duplicate_parent;
  size_t duplicate_depth = 0;
  auto callback = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      stack.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!stack.empty()) stack.pop_back();
    } else if (event == json::parse_event_t::key && !stack.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      Level& top = stack.back();
      if (!top.keys.insert(key).second && duplicate.empty()) {
        duplicate = key;
        duplicate_depth = stack.size();
        duplicate_parent = stack.size() >= 2 ? stack[stack.size() - 2].last_key : "";
      }
      top.last_key = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, callback);
  } catch (const json::parse_error& e) {
    // e.byte counts from 1; report the 0-based offset in the header and in the file.
    size_t at = e.byte > 0 ? e.byte - 1 : 0;
    fail(path, "header is not valid JSON (error at header byte " + std::to_string(at) + ", file offset " +
                   std::to_string(8 + at) + "): " + e.what());
  }
  if (!duplicate.empty()) {
    if (duplicate_depth == 1) fail(path, "duplicate tensor name " + in_quotes(duplicate) + " in the header");
    fail(path, "duplicate key " + in_quotes(duplicate) + " in the header entry " + in_quotes(duplicate_parent));
  }
  return header;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

DType parse_dtype(const std::string& path, const std::string& name, const json& v) {
  if (!v.is_string()) fail(path, "tensor " + in_quotes(name) + ": 'dtype' must be a string, got " + v.type_name());
  const std::string& s = v.get_ref<const std::string&>();
  if (s == "F32") return DType::f32;
  if (s == "F64") return DType::f64;
  if (s == "I64") return DType::i64;
  if (s == "BOOL") return DType::b8;
  static const char* const known[] = {"F16", "BF16", "F8_E4M3", "F8_E5M2", "I8", "I16",     "I32",     "U8",
                                      "U16", "U32",  "U64",     "C64",     "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0"};
  for (const char* k : known)
    if (s == k)
      fail(path, "tensor " + in_quotes(name) + ": dtype " + s +
                     " is not supported (plateau reads F32, F64, I64 and BOOL; convert the tensor before saving)");
  fail(path,
       "tensor " + in_quotes(name) + ": unknown dtype " + in_quotes(s) + " (plateau reads F32, F64, I64 and BOOL)");
}

Shape parse_shape(const std::string& path, const std::string& name, const json& v) {
  if (!v.is_array())
    fail(path, "tensor " + in_quotes(name) + ": 'shape' must be an array of integers, got " + v.type_name());
  if (v.size() > static_cast<size_t>(Shape::max_dims))
    fail(path, "tensor " + in_quotes(name) + ": shape " + v.dump() + " has " + std::to_string(v.size()) +
                   " dimensions, plateau supports at most " + std::to_string(Shape::max_dims));
  Shape shape;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& d = v[i];
    if (d.is_number_unsigned()) {
      if (d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        fail(path, "tensor " + in_quotes(name) + ": dimension " + d.dump() + " in shape " + v.dump() + " is too large");
      shape.push_back(d.get<int64_t>());
    } else if (d.is_number_integer()) {
      fail(path, "tensor " + in_quotes(name) + ": negative dimension " + d.dump() + " in shape " + v.dump());
    } else {
      fail(path, "tensor " + in_quotes(name) + ": shape " + v.dump() + " must hold integers, element " +
                     std::to_string(i) + " is a " + (d.is_number_float() ? "non-integer number" : d.type_name()));
    }
  }
  return shape;
}

Entry parse_entry(const std::string& path, const std::string& name, const json& v, uint64_t data_size) {
  if (!v.is_object())
    fail(path, "tensor " + in_quotes(name) +
                   ": header entry must be an object with dtype, shape and data_offsets, got " + v.type_name());
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) fail(path, "tensor " + in_quotes(name) + ": header entry has no '" + field + "'");
  Entry e;
  e.name = name;
  e.dtype = parse_dtype(path, name, v["dtype"]);
  e.shape = parse_shape(path, name, v["shape"]);

  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    fail(path, "tensor " + in_quotes(name) +
                   ": 'data_offsets' must be [begin, end] with two non-negative integers, got " + off.dump());
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.begin > e.end) fail(path, "tensor " + in_quotes(name) + ": data_offsets " + off.dump() + " has begin > end");
  if (e.end > data_size)
    fail(path, "tensor " + in_quotes(name) + ": data_offsets end " + std::to_string(e.end) +
                   " is past the end of the data section (" + std::to_string(data_size) + " bytes)");

  // numel · element size. Shapes are refused when the product of their non-zero dims times the element
  // size passes INT64_MAX, even if a zero dim makes them empty: Shape::numel() must never overflow.
  uint64_t extent = element_size(e.dtype);
  for (int64_t d : e.shape)
    if (d != 0 && (__builtin_mul_overflow(extent, static_cast<uint64_t>(d), &extent) ||
                   extent > static_cast<uint64_t>(INT64_MAX)))
      fail(path, "tensor " + in_quotes(name) + ": shape " + e.shape.str() + " is too large");
  uint64_t bytes = static_cast<uint64_t>(e.shape.numel()) * element_size(e.dtype);
  if (e.end - e.begin != bytes)
    fail(path, "tensor " + in_quotes(name) + ": data_offsets " + off.dump() + " cover " +
                   std::to_string(e.end - e.begin) + " bytes, but shape " + e.shape.str() + " of dtype " +
                   safetensors_dtype(e.dtype) + " needs " + std::to_string(bytes) + " (" +
                   std::to_string(e.shape.numel()) + " elements of " + std::to_string(element_size(e.dtype)) +
                   " bytes)");
  return e;
}

// The data section must be covered exactly once: no overlaps (two tensors sharing bytes), no gaps
// and no trailing bytes (as the reference implementation demands; either means a corrupt writer).
void check_coverage(const std::string& path, std::vector<Entry>& entries, uint64_t data_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end != b.end ? a.end < b.end : a.name < b.name;
  });
  // Built by appending: g++ 12 warns (-Wrestrict, a false positive) on "[" + std::to_string(...) here.
  auto range = [](const Entry& e) {
    std::string s = "[";
    s += std::to_string(e.begin);
    s += ", ";
    s += std::to_string(e.end);
    return s + ")";
  };
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < covered)
      fail(path, "tensors " + in_quotes(prev->name) + " (bytes " + range(*prev) + ") and " + in_quotes(e.name) +
                     " (bytes " + range(e) + ") overlap in the data section");
    if (e.begin > covered)
      fail(path, "gap in the data section: bytes [" + std::to_string(covered) + ", " + std::to_string(e.begin) +
                     ") belong to no tensor (" + (prev ? "between " + in_quotes(prev->name) + " and " : "before ") +
                     in_quotes(e.name) + ")");
    covered = e.end;
    prev = &e;
  }
  if (covered < data_size)
    fail(path, std::to_string(data_size - covered) + " trailing bytes: the data section has " +
                   std::to_string(data_size) + " bytes but the tensors cover only " + std::to_string(covered) +
                   (prev ? " (the last one is " + in_quotes(prev->name) + ")" : " (the header lists no tensors)"));
}

}  // namespace

// ------------------------------------------------------------------------------------------- writing

// Layout: u64 header length N, N bytes of JSON (padded with spaces to a multiple of 8, so the data
// starts 8-byte aligned), then each tensor's bytes in the map's order, packed without gaps.
void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  auto fail_save = [&](const std::string& what) {
    throw std::invalid_argument("plateau: save_safetensors: " + path + ": " + what);
  };
  // ordered_json keeps __metadata__ first and the tensors in the map's (sorted) order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::vector<Tensor> values;  // keeps contiguous copies alive until written
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") fail_save("'__metadata__' is reserved and cannot name a tensor");
    if (!t.defined()) fail_save("tensor " + in_quotes(name) + " is undefined");
    if (!t.device().is_cpu())
      fail_save("tensor " + in_quotes(name) + " is on " + t.device().str() + "; move it to the CPU before saving");
    Tensor c = kernels::dense(t);
    uint64_t nbytes = static_cast<uint64_t>(c.numel()) * element_size(c.dtype());
    header[name] = {{"dtype", safetensors_dtype(c.dtype())},
                    {"shape", c.shape().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    values.push_back(std::move(c));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::type_error& e) {  // names and metadata must be valid UTF-8
    fail_save(std::string("cannot encode the header: ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t n = text.size();

  std::vector<std::pair<const void*, size_t>> pieces = {{&n, sizeof n}, {text.data(), text.size()}};
  for (const Tensor& c : values)
    if (c.numel() > 0) pieces.emplace_back(c.raw_data(), static_cast<size_t>(c.numel()) * element_size(c.dtype()));
  detail::write_file_atomically(path, "save_safetensors", pieces);
}

TensorMap load_safetensors(const std::string& path, Metadata* metadata) {
  FileDescriptor file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) fail(path, std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);

  if (file_size < 8)
    fail(path, "file is " + std::to_string(file_size) +
                   " bytes, shorter than the 8-byte header length that starts a safetensors file");
  uint64_t header_size = 0;
  read_exactly(file.fd, path, &header_size, 8, 0);
  if (header_size > file_size - 8)
    fail(path, "header length " + std::to_string(header_size) + " is larger than the file (" +
                   std::to_string(file_size) + " bytes, " + std::to_string(file_size - 8) +
                   " after the 8-byte length): truncated, or not a safetensors file");
  std::string text(header_size, '\0');
  read_exactly(file.fd, path, text.data(), header_size, 8);
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file_size - data_start;

  json header = parse_header(path, text);
  if (!header.is_object()) fail(path, std::string("header is not a JSON object (it is a ") + header.type_name() + ")");

  Metadata meta;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object())
        fail(path, std::string("__metadata__ must be an object of strings, got ") + value.type_name());
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string())
          fail(path, "__metadata__ value for key " + in_quotes(k) + " must be a string, got " + v.type_name() + " " +
                         v.dump());
        meta[k] = v.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, key, value, data_size));
  }
  check_coverage(path, entries, data_size);

  TensorMap out;
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    if (e.end > e.begin) read_exactly(file.fd, path, t.raw_data(), e.end - e.begin, data_start + e.begin);
    if (e.dtype == DType::b8) {
      // Any byte other than 0 or 1 is not a valid C++ bool; refuse it rather than carry UB around.
      const auto* bytes = static_cast<const unsigned char*>(t.raw_data());
      for (int64_t i = 0; i < t.numel(); ++i)
        if (bytes[i] > 1)
          fail(path, "BOOL tensor " + in_quotes(e.name) + " holds byte value " + std::to_string(bytes[i]) +
                         " at element " + std::to_string(i) + " (must be 0 or 1)");
    }
    out.emplace(e.name, std::move(t));
  }
  if (metadata) *metadata = std::move(meta);
  return out;
}

}  // namespace plateau::io
