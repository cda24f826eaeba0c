// Serialization: safetensors round trips, byte-exact output, the PyTorch-written golden file, the
// malformed-file corpus (tests/corpus/README.md) and .npy export.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;
namespace fs = std::filesystem;

namespace {

using testing::source_path;
using testing::TempDir;

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// Deterministic, distinct values for element i of a tensor of dtype t (bools alternate irregularly).
Tensor filled(const Shape& shape, DType t) {
  Tensor x = empty(shape, t);
  for (int64_t i = 0; i < x.numel(); ++i) {
    switch (t) {
      case DType::f32: x.data<float>()[i] = 0.25f * static_cast<float>(i) - 1.5f; break;
      case DType::f64:
        x.data<double>()[i] = 1.0 / (static_cast<double>(i) + 3.0) - 0.125 * static_cast<double>(i);
        break;
      case DType::i64: x.data<int64_t>()[i] = (i * 7919) % 101 - 50 + (int64_t{1} << 40); break;
      case DType::b8: x.data<bool>()[i] = (i * i + 1) % 3 == 0; break;
    }
  }
  return x;
}

// A view of `base`'s storage with the given shape, strides and offset (all in elements).
Tensor strided_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// Element i (row-major) of any tensor as raw bytes, following strides.
std::string element_bytes(const Tensor& t, int64_t i) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (i % t.shape()[d]) * t.strides()[d];
    i /= t.shape()[d];
  }
  const char* base = static_cast<const char*>(t.raw_data()) + off * static_cast<int64_t>(element_size(t.dtype()));
  return std::string(base, element_size(t.dtype()));
}

// Same dtype, shape, contiguity of the loaded tensor and the same bytes element by element.
void check_same(const Tensor& loaded, const Tensor& expected) {
  REQUIRE(loaded.defined());
  CHECK(loaded.dtype() == expected.dtype());
  REQUIRE(loaded.shape() == expected.shape());
  CHECK(loaded.is_contiguous());
  for (int64_t i = 0; i < expected.numel(); ++i) CHECK(element_bytes(loaded, i) == element_bytes(expected, i));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

TEST_CASE("io: safetensors round trip of every dtype, 0-d and empty tensors, with metadata") {
  TempDir tmp;
  io::TensorMap saved;
  const DType dtypes[] = {DType::f32, DType::f64, DType::i64, DType::b8};
  const Shape shapes[] = {Shape{2, 3}, Shape{}, Shape{0}, Shape{2, 0, 3}, Shape{5}, Shape{1, 1, 2, 1, 3, 1, 1, 2}};
  for (DType t : dtypes)
    for (size_t s = 0; s < std::size(shapes); ++s)
      saved[std::string(dtype_name(t)) + "." + std::to_string(s)] = filled(shapes[s], t);
  io::Metadata meta = {{"epoch", "12"}, {"note", "ünïcode ✓ and \"quotes\"\n"}, {"", "empty key"}};
  std::string path = tmp.file("all.safetensors");
  io::save_safetensors(path, saved, meta);

  io::Metadata meta_back = {{"stale", "entry"}};
  io::TensorMap loaded = io::load_safetensors(path, &meta_back);
  CHECK(meta_back == meta);
  REQUIRE(loaded.size() == saved.size());
  for (const auto& [name, t] : saved) {
    CAPTURE(name);
    REQUIRE(loaded.count(name) == 1);
    check_same(loaded.at(name), t);
  }
  CHECK(loaded.at("f64.1").item() == 1.0 / 3.0);
  CHECK(loaded.at("i64.4").data<int64_t>()[4] == (4 * 7919) % 101 - 50 + (int64_t{1} << 40));

  // The header length keeps the data 8-byte aligned, and no temporary file is left behind.
  std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(std::distance(fs::directory_iterator(tmp.dir), fs::directory_iterator()) == 1);
}

TEST_CASE("io: safetensors saves non-contiguous views by value") {
  TempDir tmp;
  Tensor base = filled({4, 6}, DType::f64);
  // Transposed every-other-column view: shape [3, 4], element (i, j) = base[j, 2 i + 1].
  Tensor tview = strided_view(base, {3, 4}, {2, 6}, 1);
  Tensor ibase = filled({10}, DType::i64);
  Tensor iview = strided_view(ibase, {2, 2}, {4, 2}, 1);  // every other element, reshaped
  Tensor bbase = filled({6}, DType::b8);
  Tensor bview = strided_view(bbase, {3}, {-2}, 5);  // reversed, every other element
  Tensor fbase = filled({3}, DType::f32);
  Tensor fview = strided_view(fbase, {2, 3}, {0, 1}, 0);  // broadcast (stride 0) rows
  CHECK_FALSE(tview.is_contiguous());
  CHECK_FALSE(iview.is_contiguous());
  std::string path = tmp.file("views.safetensors");
  io::save_safetensors(path, {{"t", tview}, {"i", iview}, {"b", bview}, {"f", fview}});
  io::TensorMap loaded = io::load_safetensors(path);
  check_same(loaded.at("t"), tview);
  check_same(loaded.at("i"), iview);
  check_same(loaded.at("b"), bview);
  check_same(loaded.at("f"), fview);
  // Spot values by hand: (1, 2) of the transposed view is base[2, 3] = 1/(15+3) - 0.125*15.
  CHECK(loaded.at("t").data<double>()[1 * 4 + 2] == 1.0 / 18.0 - 0.125 * 15.0);
  CHECK(loaded.at("i").data<int64_t>()[3] == (7 * 7919) % 101 - 50 + (int64_t{1} << 40));
  CHECK(loaded.at("f").data<float>()[5] == 0.25f * 2 - 1.5f);
}

TEST_CASE("io: safetensors output is byte-exact") {
  TempDir tmp;
  std::string path = tmp.file("exact.safetensors");
  io::save_safetensors(
      path, {{"b", tensor(std::vector<int64_t>{7}, Shape{})}, {"a", tensor(std::vector<float>{1.0f, -2.0f}, {2})}},
      {{"k", "v"}});
  // 132 bytes of JSON (metadata first, then tensors in sorted order) padded with 4 spaces to 136.
  std::string header = R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}    )";
  REQUIRE(header.size() == 136);
  std::string expected = le64(136) + header + std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8) +  // 1.0f, -2.0f
                         std::string("\x07\x00\x00\x00\x00\x00\x00\x00", 8);                        // int64 7
  CHECK(read_bytes(path) == expected);

  // No metadata: no __metadata__ key; an empty map gives the smallest file, "{}" padded to 8.
  io::save_safetensors(path, {});
  CHECK(read_bytes(path) == le64(8) + "{}      ");
  CHECK(io::load_safetensors(path).empty());
}

TEST_CASE("io: saving replaces files atomically and reports failures") {
  TempDir tmp;
  std::string path = tmp.file("w.safetensors");
  io::save_safetensors(path, {{"x", filled({3}, DType::f32)}});
  io::save_safetensors(path, {{"y", filled({2}, DType::i64)}});  // replaces the old file
  io::TensorMap loaded = io::load_safetensors(path);
  CHECK(loaded.size() == 1);
  CHECK(loaded.count("y") == 1);

  std::string missing = tmp.file("no/such/dir/w.safetensors");
  std::string msg = error_of([&] { io::save_safetensors(missing, {{"x", filled({3}, DType::f32)}}); });
  CHECK(msg.find("plateau: save_safetensors: " + missing) == 0);
  CHECK(msg.find("No such file or directory") != std::string::npos);
  msg = error_of([&] { io::save_npy(missing, filled({3}, DType::f32)); });
  CHECK(msg.find("save_npy") != std::string::npos);
  CHECK(msg.find(missing) != std::string::npos);
  CHECK(msg.find("No such file or directory") != std::string::npos);

  // Renaming onto a directory fails after the temporary file was written: it must be removed.
  std::string dir_target = tmp.file("a_directory");
  fs::create_directory(dir_target);
  msg = error_of([&] { io::save_safetensors(dir_target, {{"x", filled({3}, DType::f32)}}); });
  CHECK(msg.find(dir_target) != std::string::npos);
  CHECK(msg.find("rename") != std::string::npos);
  CHECK(std::distance(fs::directory_iterator(tmp.dir), fs::directory_iterator()) == 2);  // w.safetensors, a_directory

  msg = error_of([&] { io::save_safetensors(path, {{"__metadata__", filled({1}, DType::f32)}}); });
  CHECK(msg.find("'__metadata__' is reserved") != std::string::npos);
  msg = error_of([&] { io::save_safetensors(path, {{"u", Tensor()}}); });
  CHECK(msg.find("tensor 'u' is undefined") != std::string::npos);
  msg = error_of([&] { io::save_safetensors(path, {{"bad\xff", filled({1}, DType::f32)}}); });
  CHECK(msg.find("cannot encode the header") != std::string::npos);
  CHECK(io::load_safetensors(path).count("y") == 1);  // failed saves left the old file intact

  std::string nofile = tmp.file("absent.safetensors");
  msg = error_of([&] { io::load_safetensors(nofile); });
  CHECK(msg == "plateau: " + nofile + ": cannot open: No such file or directory");
}

TEST_CASE("io: reads the PyTorch-written golden file mlp_ce_f64") {
  io::Metadata meta;
  io::TensorMap t = io::load_safetensors(source_path("tests/golden/mlp_ce_f64.safetensors"), &meta);
  CHECK(t.size() == 20);
  CHECK(meta.at("torch") == "1.13.0a0");
  CHECK(meta.at("generator") == "tools/make_golden.py");
  const std::pair<const char*, Shape> shapes[] = {{"in.x", {8, 5}},       {"in.target", {8}},   {"param.w1", {7, 5}},
                                                  {"param.b1", {7}},      {"param.w2", {3, 7}}, {"param.b2", {3}},
                                                  {"out.logits", {8, 3}}, {"out.loss", {}},     {"hvp.w2", {3, 7}}};
  for (const auto& [name, shape] : shapes) {
    CAPTURE(name);
    REQUIRE(t.count(name) == 1);
    CHECK(t.at(name).shape() == shape);
    CHECK(t.at(name).dtype() == (std::string(name) == "in.target" ? DType::i64 : DType::f64));
  }
  // Values decoded independently with Python's struct module.
  std::vector<int64_t> target(t.at("in.target").data<int64_t>(), t.at("in.target").data<int64_t>() + 8);
  CHECK(target == std::vector<int64_t>{2, 2, 1, 0, 1, 0, 1, 0});
  CHECK(t.at("out.loss").item() == 1.4509349762489676);
  CHECK(t.at("in.x").data<double>()[0] == -2.310411800234176);
  CHECK(t.at("out.logits").data<double>()[23] == 1.2501185012482248);
  CHECK(t.at("grad.b2").data<double>()[2] == 0.1776107419138586);

  // Saving what was loaded and loading it again gives the same tensors (the copy is laid out in sorted
  // name order, the original in PyTorch's insertion order).
  TempDir tmp;
  io::save_safetensors(tmp.file("copy.safetensors"), t, meta);
  io::Metadata meta2;
  io::TensorMap again = io::load_safetensors(tmp.file("copy.safetensors"), &meta2);
  CHECK(meta2 == meta);
  for (const auto& [name, x] : t) check_same(again.at(name), x);
}

TEST_CASE("io: every malformed corpus file is rejected with the path and the specific problem") {
  // file, then substrings the message must contain (see tests/corpus/README.md).
  const std::vector<std::vector<std::string>> cases = {
      {"short.safetensors", "file is 3 bytes, shorter than the 8-byte header length"},
      {"header_too_long.safetensors", "header length 1000 is larger than the file (15 bytes, 7 after"},
      // The parser stops after the unexpected string "data_offsets": its closing quote is header byte 49.
      {"bad_json.safetensors", "header is not valid JSON (error at header byte 49, file offset 57)", "parse error"},
      {"bad_utf8.safetensors", "header is not valid JSON", "UTF-8"},
      {"empty_header.safetensors", "header is not valid JSON", "unexpected end of input"},
      {"not_object.safetensors", "header is not a JSON object (it is a array)"},
      {"entry_not_object.safetensors", "tensor 'a': header entry must be an object", "got number"},
      {"missing_dtype.safetensors", "tensor 'a': header entry has no 'dtype'"},
      {"missing_shape.safetensors", "tensor 'a': header entry has no 'shape'"},
      {"missing_offsets.safetensors", "tensor 'a': header entry has no 'data_offsets'"},
      {"dtype_not_string.safetensors", "tensor 'a': 'dtype' must be a string, got number"},
      {"shape_not_array.safetensors", "tensor 'a': 'shape' must be an array of integers, got string"},
      {"shape_float.safetensors", "tensor 'a': shape [1.5,2] must hold integers, element 0 is a non-integer number"},
      {"unknown_dtype.safetensors", "tensor 'a': unknown dtype 'Q7'", "F32, F64, I64 and BOOL"},
      {"f16.safetensors", "tensor 'a': dtype F16 is not supported"},
      {"negative_dim.safetensors", "tensor 'a': negative dimension -1 in shape [3,-1]"},
      {"too_many_dims.safetensors", "has 9 dimensions, plateau supports at most 8"},
      {"huge_shape.safetensors", "tensor 'a': shape [1099511627776, 1099511627776] is too large"},
      {"offsets_not_pair.safetensors", "'data_offsets' must be [begin, end] with two non-negative integers, got [12]"},
      {"offsets_negative.safetensors", "'data_offsets' must be [begin, end]", "got [-4,8]"},
      {"offsets_reversed.safetensors", "tensor 'a': data_offsets [12,0] has begin > end"},
      {"offset_past_end.safetensors", "tensor 'a': data_offsets end 12 is past the end of the data section (8 bytes)"},
      {"size_mismatch.safetensors",
       "tensor 'a': data_offsets [0,8] cover 8 bytes, but shape [3] of dtype F32 needs 12 (3 elements of 4 bytes)"},
      {"overlap.safetensors", "tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) overlap"},
      {"gap.safetensors", "gap in the data section: bytes [4, 8) belong to no tensor (between 'a' and 'b')"},
      {"trailing_bytes.safetensors", "4 trailing bytes: the data section has 12 bytes but the tensors cover only 8"},
      {"duplicate_name.safetensors", "duplicate tensor name 'a'"},
      {"duplicate_field.safetensors", "duplicate key 'shape' in the header entry 'a'"},
      {"metadata_not_string.safetensors", "__metadata__ value for key 'epoch' must be a string, got number 3"},
      {"metadata_not_object.safetensors", "__metadata__ must be an object of strings, got string"},
      {"bad_bool.safetensors", "BOOL tensor 'm' holds byte value 2 at element 2 (must be 0 or 1)"},
  };
  for (const auto& c : cases) {
    std::string path = source_path("tests/corpus/" + c[0]);
    CAPTURE(path);
    REQUIRE(fs::exists(path));
    std::string msg;
    try {
      io::load_safetensors(path);
      msg = "(no exception)";
    } catch (const std::runtime_error& e) {
      msg = e.what();
    }
    CAPTURE(msg);
    CHECK(msg.find("plateau: " + path + ": ") == 0);
    for (size_t i = 1; i < c.size(); ++i) CHECK(msg.find(c[i]) != std::string::npos);
  }
}

TEST_CASE("io: safetensors reader accepts what the format allows") {
  TempDir tmp;
  std::string path = tmp.file("ok.safetensors");
  // Unpadded header, fields in another order, extra fields ignored, empty tensor between two others
  // at the same offset, data stored out of name order.
  std::string header = R"({"z":{"data_offsets":[0,8],"shape":[1],"dtype":"F64","extra":1},)"
                       R"("e":{"dtype":"F32","shape":[0,4],"data_offsets":[8,8]},)"
                       R"("a":{"dtype":"BOOL","shape":[2],"data_offsets":[8,10]}})";
  std::string data =
      std::string("\x00\x00\x00\x00\x00\x00\xf0\x3f", 8) + std::string("\x01\x00", 2);  // 1.0, true, false
  write_bytes(path, le64(header.size()) + header + data);
  io::Metadata meta = {{"old", "x"}};
  io::TensorMap t = io::load_safetensors(path, &meta);
  CHECK(meta.empty());
  REQUIRE(t.size() == 3);
  CHECK(t.at("z").item() == 1.0);
  CHECK(t.at("e").shape() == Shape{0, 4});
  CHECK(t.at("e").dtype() == DType::f32);
  CHECK(t.at("a").data<bool>()[0] == true);
  CHECK(t.at("a").data<bool>()[1] == false);
}

TEST_CASE("io: npy headers and data are byte-exact") {
  TempDir tmp;
  auto npy = [&](const Tensor& t) {
    std::string path = tmp.file("t.npy");
    io::save_npy(path, t);
    return read_bytes(path);
  };
  auto expected_header = [](const std::string& dict) {
    // magic, version 1.0, u16 length, dict padded with spaces, '\n': 10 + length is a multiple of 64.
    size_t len = (10 + dict.size() + 1 + 63) / 64 * 64 - 10;
    std::string h = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(len & 0xff) + static_cast<char>(len >> 8);
    return h + dict + std::string(len - dict.size() - 1, ' ') + "\n";
  };

  std::string f32 = npy(tensor(std::vector<float>{1.0f, -2.0f, 0.5f, 0, 0, 4.0f}, {2, 3}));
  std::string f32_header = expected_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  REQUIRE(f32_header.size() == 128);  // 10 + 59 bytes of dict + newline spill into a second 64-byte block
  CHECK(f32 == f32_header + std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0\x00\x00\x00\x3f", 12) + std::string(8, '\0') +
                   std::string("\x00\x00\x80\x40", 4));

  std::string f64 = npy(tensor(std::vector<double>{2.0}, {1}, DType::f64));
  CHECK(f64 == expected_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }") +
                   std::string("\x00\x00\x00\x00\x00\x00\x00\x40", 8));
  CHECK(f64.size() == 128 + 8);

  std::string i64 = npy(tensor(std::vector<int64_t>{-1}, Shape{}));
  CHECK(i64 == expected_header("{'descr': '<i8', 'fortran_order': False, 'shape': (), }") + std::string(8, '\xff'));

  Tensor b = empty({3}, DType::b8);
  b.data<bool>()[0] = true;
  b.data<bool>()[1] = false;
  b.data<bool>()[2] = true;
  CHECK(npy(b) ==
        expected_header("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }") + std::string("\x01\x00\x01", 3));

  CHECK(npy(empty({2, 0, 5}, DType::f32)) ==
        expected_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0, 5), }"));

  // A non-contiguous view is written in C order: transpose of [[0, 1, 2], [3, 4, 5]] (i64).
  Tensor base = tensor(std::vector<int64_t>{0, 1, 2, 3, 4, 5}, {2, 3});
  std::string data;
  for (int64_t v : {0, 3, 1, 4, 2, 5}) data += le64(static_cast<uint64_t>(v));
  CHECK(npy(strided_view(base, {3, 2}, {1, 3}, 0)) ==
        expected_header("{'descr': '<i8', 'fortran_order': False, 'shape': (3, 2), }") + data);
  CHECK(std::distance(fs::directory_iterator(tmp.dir), fs::directory_iterator()) == 1);
}
