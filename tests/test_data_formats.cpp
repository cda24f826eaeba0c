// The data file formats: IDX (raw and gzip), CIFAR binary, digits CSV, the bundled MNIST test set,
// Fashion-MNIST's Debian location, and the malformed files in tests/corpus/data_* (data_corpus.md).
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;
namespace fs = std::filesystem;

namespace {

using testing::source_path;
using testing::TempDir;

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

// An IDX image file of n images rows×cols whose pixel i is (3i + 1) mod 256.
std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
  std::vector<uint8_t> out;
  for (uint32_t v : {0x00000803u, n, rows, cols}) put_be32(out, v);
  for (uint32_t i = 0; i < n * rows * cols; ++i) out.push_back(static_cast<uint8_t>((3 * i + 1) % 256));
  return out;
}

std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> out;
  put_be32(out, 0x00000801u);
  put_be32(out, static_cast<uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

// One gzip member (zlib's deflate with the gzip wrapper).
std::vector<uint8_t> gzip(const std::vector<uint8_t>& in) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<uint8_t> out(deflateBound(&z, in.size()) + 32);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A CIFAR record in the official layout: label byte(s), then R, G, B planes of 32×32, pixel i of
// record r being (i + 7r) mod 256.
std::vector<uint8_t> cifar_record(std::vector<uint8_t> labels, int r) {
  for (int i = 0; i < 3072; ++i) labels.push_back(static_cast<uint8_t>((i + 7 * r) % 256));
  return labels;
}

}  // namespace

TEST_CASE("data: IDX images and labels parse raw and gzip-compressed (concatenated members too)") {
  std::vector<uint8_t> raw = idx_images(3, 4, 5);
  Tensor x = data::parse_idx_images(raw);
  REQUIRE(x.shape() == Shape({3, 1, 4, 5}));
  REQUIRE(x.dtype() == DType::f32);
  std::vector<float> v = x.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == static_cast<float>((3 * i + 1) % 256) / 255.0f);
  CHECK(data::parse_idx_images(gzip(raw)).to_vector<float>() == v);
  // gzip allows members to be concatenated (gzip a b > c): they read as one stream.
  std::vector<uint8_t> first(raw.begin(), raw.begin() + 30), second(raw.begin() + 30, raw.end());
  std::vector<uint8_t> two = gzip(first), tail = gzip(second);
  two.insert(two.end(), tail.begin(), tail.end());
  CHECK(data::parse_idx_images(two).to_vector<float>() == v);

  std::vector<uint8_t> lab = idx_labels({7, 0, 255});
  CHECK(data::parse_idx_labels(lab).to_vector<int64_t>() == std::vector<int64_t>{7, 0, 255});
  CHECK(data::parse_idx_labels(gzip(lab)).to_vector<int64_t>() == std::vector<int64_t>{7, 0, 255});
  CHECK(data::parse_idx_images(idx_images(0, 28, 28)).shape() == Shape({0, 1, 28, 28}));

  TempDir tmp;
  std::string images = tmp.write("i.gz", gzip(raw)), labels = tmp.write("l", idx_labels({1, 2, 3}));
  data::TensorDataset ds = data::load_idx(images, labels);
  CHECK(ds.size() == 3);
  CHECK(ds.labels().to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});
  // num_classes checks the labels: 3 is outside [0, 3), at byte 8 + 2 of the label file.
  testing::check_error([&] { data::load_idx(images, labels, 3); },
                       {labels + ": byte offset 10: label 3 of example 2 is outside [0, 3)"});
  testing::check_error([&] { data::read_idx_images((tmp.dir / "missing").string()); }, {"missing", "cannot open"});
}

TEST_CASE("data: the bundled MNIST test set has 10,000 images with MNIST's label counts and pixel sums") {
  data::TensorDataset mnist = data::mnist_test_set();
  REQUIRE(mnist.inputs().shape() == Shape({10000, 1, 28, 28}));
  std::vector<int64_t> labels = mnist.labels().to_vector<int64_t>();
  std::vector<int64_t> hist(10, 0);
  for (int64_t l : labels) hist.at(static_cast<size_t>(l))++;
  CHECK(hist == std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
  CHECK(std::vector<int64_t>(labels.begin(), labels.begin() + 10) ==
        std::vector<int64_t>{7, 2, 1, 0, 4, 1, 4, 9, 5, 9});
  // Pixel bytes recovered exactly from the f32 values: their sums (computed from the raw file with
  // Python) pin down every decoding step.
  const float* px = mnist.inputs().data<float>();
  int64_t total = 0, first = 0, lo = 255, hi = 0;
  for (int64_t i = 0; i < mnist.inputs().numel(); ++i) {
    float scaled = px[i] * 255.0f;
    int64_t b = std::lround(scaled);
    REQUIRE(std::abs(scaled - static_cast<float>(b)) < 1e-3f);
    total += b;
    if (i < 784) first += b;
    lo = std::min(lo, b);
    hi = std::max(hi, b);
  }
  CHECK(total == 264923200);  // mean pixel 0.1325
  CHECK(first == 18454);
  CHECK(lo == 0);
  CHECK(hi == 255);
  CHECK(data::load_mnist(data::bundled_data_dir() + "/mnist", data::SplitName::test).size() == 10000);
  testing::check_error([] { data::load_mnist(data::bundled_data_dir() + "/mnist", data::SplitName::train); },
                       {"no train-images-idx3-ubyte.gz", "only the MNIST test set"});
}

TEST_CASE("data: Fashion-MNIST loads from Debian's dataset-fashion-mnist, or says which package to install") {
  if (fs::exists(std::string(data::fashion_mnist_dir) + "/train-images-idx3-ubyte.gz")) {
    data::TensorDataset test = data::load_fashion_mnist(data::SplitName::test);
    REQUIRE(test.inputs().shape() == Shape({10000, 1, 28, 28}));
    std::vector<int64_t> hist(10, 0);
    for (int64_t l : test.labels().to_vector<int64_t>()) hist.at(static_cast<size_t>(l))++;
    CHECK(hist == std::vector<int64_t>(10, 1000));
    CHECK(data::load_fashion_mnist(data::SplitName::train).size() == 60000);
  } else {
    testing::check_error([] { data::load_fashion_mnist(data::SplitName::train); },
                         {"/usr/share/datasets/fashion-mnist", "apt-get install dataset-fashion-mnist"});
  }
  TempDir tmp;
  testing::check_error([&] { data::load_fashion_mnist(data::SplitName::test, tmp.dir.string()); },
                       {tmp.dir.string(), "t10k-images-idx3", "dataset-fashion-mnist"});
}

TEST_CASE("data: CIFAR-10 and CIFAR-100 records in the official layout") {
  std::vector<uint8_t> c10;
  for (int r = 0; r < 3; ++r) {
    auto rec = cifar_record({static_cast<uint8_t>(r * 4)}, r);
    c10.insert(c10.end(), rec.begin(), rec.end());
  }
  data::TensorDataset ds = data::parse_cifar(c10, data::CifarVariant::cifar10);
  REQUIRE(ds.inputs().shape() == Shape({3, 3, 32, 32}));
  CHECK(ds.labels().to_vector<int64_t>() == std::vector<int64_t>{0, 4, 8});
  const float* px = ds.inputs().data<float>();
  // Channel c, row y, column x of record r is byte 1 + 1024c + 32y + x of the record.
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      for (int y : {0, 5, 31})
        for (int x : {0, 17, 31}) {
          int i = 1024 * c + 32 * y + x;
          CHECK(px[((r * 3 + c) * 32 + y) * 32 + x] == static_cast<float>((i + 7 * r) % 256) / 255.0f);
        }

  std::vector<uint8_t> c100 = cifar_record({19, 99}, 0), second = cifar_record({3, 42}, 1);
  c100.insert(c100.end(), second.begin(), second.end());
  CHECK(data::parse_cifar(c100, data::CifarVariant::cifar100_fine).labels().to_vector<int64_t>() ==
        std::vector<int64_t>{99, 42});
  data::TensorDataset coarse = data::parse_cifar(c100, data::CifarVariant::cifar100_coarse);
  CHECK(coarse.labels().to_vector<int64_t>() == std::vector<int64_t>{19, 3});
  CHECK(coarse.inputs().data<float>()[3072 + 5] == static_cast<float>((5 + 7) % 256) / 255.0f);
  CHECK(data::parse_cifar(gzip(c100), data::CifarVariant::cifar100_fine).labels().to_vector<int64_t>() ==
        std::vector<int64_t>{99, 42});

  // A directory with the official names; the five training batches are concatenated in order.
  TempDir tmp;
  for (int b = 1; b <= 5; ++b)
    tmp.write("data_batch_" + std::to_string(b) + ".bin", cifar_record({static_cast<uint8_t>(b)}, b));
  tmp.write("test_batch.bin", c10);
  data::TensorDataset train = data::load_cifar_dir(tmp.dir.string(), data::CifarVariant::cifar10, true);
  CHECK(train.labels().to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 4, 5});
  CHECK(train.inputs().data<float>()[4 * 3072] == static_cast<float>(7 * 5 % 256) / 255.0f);
  CHECK(data::load_cifar_dir(tmp.dir.string(), data::CifarVariant::cifar10, false).size() == 3);
  // A CIFAR-100 file read as CIFAR-10: 6148 bytes are not whole 3073-byte records.
  testing::check_error([&] { data::parse_cifar(c100, data::CifarVariant::cifar10, "c100.bin"); },
                       {"c100.bin: byte offset 6146: 6148 bytes are not a whole number of CIFAR-10 records"});
}

TEST_CASE("data: digits CSV, as sklearn's digits.csv.gz and in numpy.savetxt's float form") {
  std::string line1, line2;
  for (int i = 0; i < 64; ++i) line1 += std::to_string(i % 17) + ",";
  line1 += "3\n";
  for (int i = 0; i < 64; ++i) line2 += std::to_string((i * 3) % 17) + ".000000000000000000e+00,";
  line2 += "9.000000000000000000e+00\r\n";
  data::TensorDataset ds = data::parse_digits_csv(bytes_of(line1 + line2));
  REQUIRE(ds.inputs().shape() == Shape({2, 64}));
  CHECK(ds.labels().to_vector<int64_t>() == std::vector<int64_t>{3, 9});
  std::vector<float> v = ds.inputs().to_vector<float>();
  for (int i = 0; i < 64; ++i) {
    CHECK(v[i] == static_cast<float>(i % 17));
    CHECK(v[64 + i] == static_cast<float>((i * 3) % 17));
  }
  // No final newline, and gzip.
  std::string no_newline = line1.substr(0, line1.size() - 1);
  CHECK(data::parse_digits_csv(bytes_of(no_newline)).size() == 1);
  CHECK(data::parse_digits_csv(gzip(bytes_of(line1 + line2))).labels().to_vector<int64_t>() ==
        std::vector<int64_t>{3, 9});
  // Other layouts through the options.
  data::TensorDataset small =
      data::parse_digits_csv(bytes_of("1,2,0\n3,4,1\n"), "s", {.features = 2, .max_feature = 4, .num_classes = 2});
  CHECK(small.inputs().to_vector<float>() == std::vector<float>{1, 2, 3, 4});
  if (fs::exists(data::sklearn_digits_path)) {
    data::TensorDataset digits = data::load_digits_csv(data::sklearn_digits_path);
    CHECK(digits.size() == 1797);
  }
}

TEST_CASE("data: every malformed data_* corpus file is rejected naming the file and the byte offset") {
  using Load = std::function<void(const std::string&)>;
  auto images = [](const std::string& p) { data::read_idx_images(p); };
  auto labels = [](const std::string& p) { data::read_idx_labels(p); };
  auto cifar10 = [](const std::string& p) { data::load_cifar(p, data::CifarVariant::cifar10); };
  auto cifar100 = [](const std::string& p) { data::load_cifar(p, data::CifarVariant::cifar100_fine); };
  auto csv = [](const std::string& p) { data::load_digits_csv(p); };
  auto pair = [](const std::string&) {
    data::load_idx(source_path("tests/corpus/data_idx_pair_images.idx"),
                   source_path("tests/corpus/data_idx_pair_labels.idx"));
  };
  auto content = [](const std::string& name) {
    std::ifstream in(source_path("tests/corpus/" + name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto size_of = [&](const std::string& name) { return static_cast<int64_t>(content(name).size()); };
  struct Case {
    Load load;
    std::string named_file;  // the file the message names (another one for the pair)
    int64_t offset;
    std::vector<std::string> pieces;
  };
  // The offsets of the CSV cases come from the file's text: where the bad field or byte sits.
  const std::string short_line = content("data_digits_short_line.csv"),
                    long_line = content("data_digits_long_line.csv");
  std::map<std::string, Case> cases = {
      {"data_idx_short_header.idx",
       {images, "", 6, {"the size of dimension 0 in the IDX header: the data ends at byte offset 6, 2 bytes short"}}},
      {"data_idx_label_magic.idx",
       {images,
        "",
        0,
        {"wrong magic number 0x00000801 for an IDX image file (expected 0x00000803", "looks like an IDX label file"}}},
      {"data_idx_bad_magic.idx",
       {images, "", 0, {"wrong magic number 0x12345678", "first two bytes of an IDX file are zero"}}},
      {"data_idx_claims_more.idx",
       {images,
        "",
        16,
        {"the header claims 1000 images of 28x28 pixels (784000 bytes), but only 1568 bytes follow the 16-byte "
         "header"}}},
      {"data_idx_trailing.idx",
       {images, "", 48, {"10 trailing bytes after the 32 data bytes the header describes (2 images of 4x4 pixels)"}}},
      {"data_idx_overflow.idx",
       {images, "", 4, {"the header's sizes (4294967295 images of 4294967295x4294967295 pixels) overflow"}}},
      {"data_idx_labels_claims_more.idx",
       {labels, "", 8, {"the header claims 60000 labels (60000 bytes), but only 3 bytes follow the 8-byte header"}}},
      {"data_idx_truncated.gz",
       {images,
        "",
        40,
        {"truncated gzip stream: the compressed data ends (file size 40 bytes) before the end-of-stream marker"}}},
      {"data_idx_gz_claims_more.gz",
       {images,
        "",
        16,
        {"(after gzip decompression)",
         "the header claims 100000 images of 28x28 pixels (78400000 bytes), more than the rest of the gzip stream can "
         "hold"}}},
      {"data_idx_gz_short.gz",
       {images,
        "",
        1584,
        {"(after gzip decompression)",
         "the data ends at byte offset 1584, but the header claims 3 images of 28x28: 2352 bytes from byte offset "
         "16"}}},
      {"data_idx_gz_trailing.gz", {images, "", 48, {"trailing bytes after the 32 data bytes the header describes"}}},
      // zlib checks the CRC-32 after reading the trailer's first 4 bytes, so it stops before the 4-byte length.
      {"data_idx_gz_bad_crc.gz",
       {images, "", size_of("data_idx_gz_bad_crc.gz") - 4, {"corrupt gzip data (zlib: incorrect data check)"}}},
      {"data_idx_gz_garbage_after.gz",
       {images,
        "",
        size_of("data_idx_gz_garbage_after.gz") - 4,
        {"4 bytes after the end of the gzip stream are not gzip data"}}},
      {"data_idx_pair_images.idx",
       {pair,
        "data_idx_pair_images.idx",
        4,
        {"the image file holds 3 images but", "data_idx_pair_labels.idx holds 2 labels"}}},
      {"data_idx_pair_labels.idx", {pair, "data_idx_pair_images.idx", 4, {"the image file holds 3 images"}}},
      {"data_cifar10_partial.bin",
       {cifar10,
        "",
        6146,
        {"6246 bytes are not a whole number of CIFAR-10 records of 3073 bytes (2 records, then a partial one of 100 "
         "bytes starting here)"}}},
      {"data_cifar10_label.bin", {cifar10, "", 3073, {"record 1 has label 10, outside CIFAR-10's 0..9"}}},
      {"data_cifar100_coarse.bin", {cifar100, "", 3074, {"record 1 has coarse label 20, outside CIFAR-100's 0..19"}}},
      {"data_cifar100_fine.bin",
       {cifar100, "", 3075, {"record 1 has label 100, outside CIFAR-100's fine labels 0..99"}}},
      {"data_cifar_empty.bin", {cifar10, "", 0, {"empty file: a CIFAR-10 file holds records of 3073 bytes"}}},
      {"data_digits_short_line.csv",
       {csv,
        "",
        static_cast<int64_t>(short_line.size()) - 1,
        {"line 2: found byte 0x0a after field 64: a line has 65 comma-separated fields (64 features and a label)"}}},
      {"data_digits_long_line.csv",
       {csv,
        "",
        static_cast<int64_t>(long_line.rfind(',')),
        {"line 2: found ',' after field 65: a line ends after 65 fields"}}},
      {"data_digits_not_number.csv",
       {csv,
        "",
        static_cast<int64_t>(content("data_digits_not_number.csv").find('x')),
        {"line 1: expected field 12 of 65 (64 features and a label), found 'x'"}}},
      {"data_digits_fraction.csv",
       {csv,
        "",
        static_cast<int64_t>(content("data_digits_fraction.csv").find("2.5")),
        {"line 1: field 6 '2.5' is not a whole number"}}},
      {"data_digits_feature_range.csv",
       {csv,
        "",
        static_cast<int64_t>(content("data_digits_feature_range.csv").find(",17,")) + 1,
        {"line 1: feature 7 is 17, outside [0, 16]"}}},
      {"data_digits_label_range.csv",
       {csv,
        "",
        static_cast<int64_t>(content("data_digits_label_range.csv").rfind(",10")) + 1,
        {"line 2: label is 10, outside [0, 9]"}}},
      {"data_digits_empty.csv", {csv, "", 0, {"no examples: the file is empty"}}},
      {"data_digits_truncated.csv.gz", {csv, "", 60, {"truncated gzip stream"}}},
  };
  // Every data_* file (but the generator script) must have an expectation, and every expectation a file.
  size_t seen = 0;
  for (const auto& entry : fs::directory_iterator(source_path("tests/corpus"))) {
    std::string name = entry.path().filename().string();
    if (name.rfind("data_", 0) != 0 || entry.path().extension() == ".py" || entry.path().extension() == ".md") continue;
    CAPTURE(name);
    REQUIRE(cases.count(name) == 1);
    ++seen;
    const Case& c = cases.at(name);
    std::string path = source_path("tests/corpus/" + name);
    std::string named = c.named_file.empty() ? path : source_path("tests/corpus/" + c.named_file);
    std::string msg;
    int64_t offset = -1;
    reset_peak_host_memory();
    int64_t before = host_memory_stats().allocated;
    try {
      c.load(path);
      msg = "(no exception)";
    } catch (const data::FormatError& e) {
      msg = e.what();
      offset = e.offset();
      CHECK(e.file() == named);
    }
    CAPTURE(msg);
    // Rejected before allocating what the header claims: no tensor memory was taken.
    CHECK(host_memory_stats().peak - before < 64 * 1024);
    CHECK(offset == c.offset);
    CHECK(msg.rfind("plateau: " + named + ": byte offset " + std::to_string(c.offset), 0) == 0);
    for (const auto& piece : c.pieces) CHECK(msg.find(piece) != std::string::npos);
  }
  CHECK(seen == cases.size());
}
