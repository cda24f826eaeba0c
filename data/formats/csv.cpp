#include "data/formats/csv.h"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/ops/factory.h"
#include "data/formats/bytes.h"

namespace plateau::data {

namespace {

bool number_char(uint8_t c) {
  return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

std::string describe_byte(std::span<const uint8_t> bytes, size_t pos) {
  if (pos >= bytes.size()) return "the end of the file";
  uint8_t c = bytes[pos];
  if (c >= 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
  const char* hex = "0123456789abcdef";
  return std::string("byte 0x") + hex[c >> 4] + hex[c & 15];
}

}  // namespace

// Fields are integers, also accepted in the forms numpy.savetxt writes ("5.000000000000000000e+00")
// as long as the value is a whole number.
TensorDataset parse_digits_csv(std::span<const uint8_t> bytes, const std::string& name, const CsvOptions& options) {
  if (options.features < 1 || options.max_feature < 0 || options.num_classes < 1)
    throw std::invalid_argument("plateau: parse_digits_csv needs features >= 1, max_feature >= 0 and num_classes >= 1");
  std::vector<uint8_t> inflated;
  bool decompressed = is_gzip(bytes);
  if (decompressed) {
    ByteReader in(bytes, name);
    inflated = in.read_rest(uint64_t(1) << 32, "a CSV file");
    bytes = inflated;
  }
  int64_t line = 0;
  auto fail = [&](size_t offset, const std::string& what) {
    throw FormatError(name, static_cast<int64_t>(offset), "line " + std::to_string(line) + ": " + what, decompressed);
  };
  const int64_t fields = options.features + 1;
  const std::string expected = std::to_string(options.features) + " features and a label";
  std::vector<float> features;
  std::vector<int64_t> labels;
  size_t pos = 0, size = bytes.size();
  while (pos < size) {
    ++line;
    for (int64_t field = 0; field < fields; ++field) {
      while (pos < size && bytes[pos] == ' ') ++pos;
      size_t start = pos;
      while (pos < size && number_char(bytes[pos])) ++pos;
      if (pos == start)
        fail(pos, "expected field " + std::to_string(field + 1) + " of " + std::to_string(fields) + " (" + expected +
                      "), found " + describe_byte(bytes, pos));
      double value = 0;
      auto [end, ec] = std::from_chars(reinterpret_cast<const char*>(bytes.data() + start),
                                       reinterpret_cast<const char*>(bytes.data() + pos), value);
      if (ec != std::errc() || end != reinterpret_cast<const char*>(bytes.data() + pos) || !std::isfinite(value) ||
          value != std::floor(value))
        fail(start, "field " + std::to_string(field + 1) + " '" +
                        std::string(reinterpret_cast<const char*>(bytes.data() + start), pos - start) +
                        "' is not a whole number");
      bool is_label = field == options.features;
      double limit = is_label ? static_cast<double>(options.num_classes - 1) : static_cast<double>(options.max_feature);
      if (value < 0 || value > limit)
        fail(start, std::string(is_label ? "label " : "feature " + std::to_string(field) + " ") + "is " +
                        std::to_string(static_cast<long long>(std::max(-1e18, std::min(value, 1e18)))) +
                        ", outside [0, " + std::to_string(static_cast<int64_t>(limit)) + "]");
      if (is_label)
        labels.push_back(static_cast<int64_t>(value));
      else
        features.push_back(static_cast<float>(value));
      while (pos < size && bytes[pos] == ' ') ++pos;
      if (field + 1 < fields) {
        if (pos >= size || bytes[pos] != ',')
          fail(pos, "found " + describe_byte(bytes, pos) + " after field " + std::to_string(field + 1) +
                        ": a line has " + std::to_string(fields) + " comma-separated fields (" + expected + ")");
        ++pos;
      }
    }
    if (pos < size && bytes[pos] == '\r') ++pos;
    if (pos < size && bytes[pos] != '\n')
      fail(pos, "found " + describe_byte(bytes, pos) + " after field " + std::to_string(fields) +
                    ": a line ends after " + std::to_string(fields) + " fields (" + expected + ")");
    if (pos < size) ++pos;
  }
  if (labels.empty()) throw FormatError(name, 0, "no examples: the file is empty", decompressed);
  int64_t n = static_cast<int64_t>(labels.size());
  return TensorDataset(tensor(features, {n, options.features}), tensor(labels, {n}));
}

TensorDataset load_digits_csv(const std::string& path, const CsvOptions& options) {
  return parse_digits_csv(read_file(path), path, options);
}

}  // namespace plateau::data
