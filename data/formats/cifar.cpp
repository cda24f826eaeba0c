#include "data/formats/cifar.h"

#include <cstring>
#include <stdexcept>

#include "core/ops/factory.h"
#include "data/formats/bytes.h"

namespace plateau::data {

namespace {

constexpr int64_t pixels = 3 * 32 * 32;

const char* variant_name(CifarVariant v) {
  switch (v) {
    case CifarVariant::cifar10: return "CIFAR-10";
    case CifarVariant::cifar100_fine: return "CIFAR-100 (fine labels)";
    case CifarVariant::cifar100_coarse: return "CIFAR-100 (coarse labels)";
  }
  return "CIFAR";
}

// Checks every record's label bytes against their ranges; nothing is allocated before this passes.
void check_records(std::span<const uint8_t> data, CifarVariant v, const std::string& name, bool decompressed) {
  int64_t record = cifar_record_bytes(v), size = static_cast<int64_t>(data.size());
  if (size == 0)
    throw FormatError(
        name, 0,
        std::string("empty file: a ") + variant_name(v) + " file holds records of " + std::to_string(record) + " bytes",
        decompressed);
  if (size % record != 0)
    throw FormatError(name, size / record * record,
                      std::to_string(size) + " bytes are not a whole number of " + variant_name(v) + " records of " +
                          std::to_string(record) + " bytes (" + std::to_string(size / record) +
                          " records, then a partial one of " + std::to_string(size % record) +
                          " bytes starting here); is this the right CIFAR variant?",
                      decompressed);
  bool two = record == 3074;
  for (int64_t r = 0, offset = 0; offset < size; ++r, offset += record) {
    int64_t coarse = two ? data[offset] : -1, label = data[offset + (two ? 1 : 0)];
    if (two && coarse >= 20)
      throw FormatError(
          name, offset,
          "record " + std::to_string(r) + " has coarse label " + std::to_string(coarse) + ", outside CIFAR-100's 0..19",
          decompressed);
    int64_t limit = two ? 100 : 10;
    if (label >= limit)
      throw FormatError(name, offset + (two ? 1 : 0),
                        "record " + std::to_string(r) + " has label " + std::to_string(label) + ", outside " +
                            (two ? "CIFAR-100's fine labels 0..99" : "CIFAR-10's 0..9") +
                            (two ? "" : " (a CIFAR-100 file needs CifarVariant::cifar100_fine or cifar100_coarse)"),
                        decompressed);
  }
}

}  // namespace

int64_t cifar_record_bytes(CifarVariant v) { return v == CifarVariant::cifar10 ? 1 + pixels : 2 + pixels; }
int64_t cifar_num_classes(CifarVariant v) {
  return v == CifarVariant::cifar10 ? 10 : v == CifarVariant::cifar100_fine ? 100 : 20;
}

TensorDataset parse_cifar(std::span<const uint8_t> bytes, CifarVariant v, const std::string& name) {
  std::vector<uint8_t> inflated;
  bool decompressed = is_gzip(bytes);
  if (decompressed) {
    ByteReader in(bytes, name);
    inflated = in.read_rest(uint64_t(1) << 34, "a CIFAR file");
    bytes = inflated;
  }
  check_records(bytes, v, name, decompressed);
  int64_t record = cifar_record_bytes(v), n = static_cast<int64_t>(bytes.size()) / record;
  Tensor images = empty({n, 3, 32, 32}, DType::f32), labels = empty({n}, DType::i64);
  float* img = images.data<float>();
  int64_t* lab = labels.data<int64_t>();
  int64_t label_byte = v == CifarVariant::cifar100_fine ? 1 : 0;
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* rec = bytes.data() + r * record;
    lab[r] = rec[label_byte];
    const uint8_t* px = rec + (record - pixels);
    for (int64_t i = 0; i < pixels; ++i) img[r * pixels + i] = static_cast<float>(px[i]) / 255.0f;
  }
  return TensorDataset(images, labels);
}

TensorDataset load_cifar(const std::string& path, CifarVariant v) { return parse_cifar(read_file(path), v, path); }

TensorDataset load_cifar(const std::vector<std::string>& paths, CifarVariant v) {
  if (paths.empty()) throw std::invalid_argument("plateau: load_cifar needs at least one file");
  std::vector<TensorDataset> parts;
  int64_t n = 0;
  for (const auto& p : paths) {
    parts.push_back(load_cifar(p, v));
    n += parts.back().size();
  }
  if (parts.size() == 1) return parts[0];
  Tensor images = empty({n, 3, 32, 32}, DType::f32), labels = empty({n}, DType::i64);
  int64_t at = 0;
  for (const auto& part : parts) {
    int64_t m = part.size();
    std::memcpy(images.data<float>() + at * pixels, part.inputs().data<float>(), static_cast<size_t>(m * pixels) * 4);
    std::memcpy(labels.data<int64_t>() + at, part.labels().data<int64_t>(), static_cast<size_t>(m) * 8);
    at += m;
  }
  return TensorDataset(images, labels);
}

TensorDataset load_cifar_dir(const std::string& dir, CifarVariant v, bool train) {
  std::vector<std::string> paths;
  if (v == CifarVariant::cifar10) {
    if (train)
      for (int i = 1; i <= 5; ++i) paths.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
    else
      paths.push_back(dir + "/test_batch.bin");
  } else {
    paths.push_back(dir + (train ? "/train.bin" : "/test.bin"));
  }
  return load_cifar(paths, v);
}

}  // namespace plateau::data
