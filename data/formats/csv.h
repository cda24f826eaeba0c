#pragma once
// scikit-learn's digits CSV (sklearn/datasets/data/digits.csv.gz, from UCI optdigits): one example
// per line, no header, 64 comma-separated integers 0..16 (an 8×8 image, row-major) then the label
// 0..9. Raw or gzip-compressed. Inputs come out as f32 [N, 64] holding the raw 0..16 values, labels
// as i64 [N]. A line with the wrong number of fields, a field that is not an integer, or a value out
// of range throws FormatError naming the file, the byte offset and the line.
#include <cstdint>
#include <span>
#include <string>

#include "data/dataset.h"

namespace plateau::data {

struct CsvOptions {
  int64_t features = 64;
  int64_t max_feature = 16;  // features lie in [0, max_feature]
  int64_t num_classes = 10;  // labels lie in [0, num_classes)
};

TensorDataset parse_digits_csv(std::span<const uint8_t> bytes, const std::string& name = "<memory>",
                               const CsvOptions& options = {});
TensorDataset load_digits_csv(const std::string& path, const CsvOptions& options = {});

// Where Debian's python3-sklearn puts the file.
inline constexpr const char* sklearn_digits_path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";

}  // namespace plateau::data
