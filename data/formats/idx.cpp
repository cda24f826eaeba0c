#include "data/formats/idx.h"

#include <cstdio>
#include <stdexcept>

#include "core/ops/factory.h"
#include "data/formats/bytes.h"

namespace plateau::data {

namespace {

uint32_t big_endian(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
         p[3];
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Reads the magic and the sizes of an IDX file of unsigned bytes with `dims` dimensions, checks that
// the data that follows has exactly their product's length (or, for gzip, could have), and returns
// the sizes. `kind` names the file kind in messages.
std::vector<uint64_t> read_header(ByteReader& in, int dims, const char* kind, const char* other_kind) {
  uint8_t magic_bytes[4];
  in.read_exact(magic_bytes, 4, std::string("the 4-byte magic number of an IDX ") + kind + " file");
  uint32_t magic = big_endian(magic_bytes), want = 0x00000800u | static_cast<uint32_t>(dims);
  if (magic != want) {
    std::string what = "wrong magic number " + hex(magic) + " for an IDX " + kind + " file (expected " + hex(want) +
                       ": unsigned bytes, " + std::to_string(dims) + " dimension" + (dims > 1 ? "s" : "") + ")";
    if (magic == (0x00000800u | static_cast<uint32_t>(dims == 3 ? 1 : 3)))
      what += "; this looks like an IDX " + std::string(other_kind) + " file";
    else if ((magic >> 16) != 0)
      what += "; the first two bytes of an IDX file are zero";
    in.fail(0, what);
  }
  std::vector<uint64_t> sizes(static_cast<size_t>(dims));
  for (int d = 0; d < dims; ++d) {
    uint8_t b[4];
    in.read_exact(b, 4, "the size of dimension " + std::to_string(d) + " in the IDX header");
    sizes[static_cast<size_t>(d)] = big_endian(b);
  }
  uint64_t payload = 0;
  bool fits = false;
  if (dims == 1) fits = checked_product({sizes[0]}, payload);
  if (dims == 3) fits = checked_product({sizes[0], sizes[1], sizes[2]}, payload);
  std::string claim =
      std::to_string(sizes[0]) +
      (dims == 3 ? " images of " + std::to_string(sizes[1]) + "x" + std::to_string(sizes[2]) + " pixels" : " labels");
  int64_t header = in.position();
  if (!fits) in.fail(4, "the header's sizes (" + claim + ") overflow");
  uint64_t left = in.max_remaining();
  if (payload > left) {
    if (in.compressed())
      in.fail(header, "the header claims " + claim + " (" + std::to_string(payload) +
                          " bytes), more than the rest of the gzip stream can hold (at most " + std::to_string(left) +
                          " bytes)");
    in.fail(header, "the header claims " + claim + " (" + std::to_string(payload) + " bytes), but only " +
                        std::to_string(left) + " bytes follow the " + std::to_string(header) + "-byte header");
  }
  if (!in.compressed() && payload < left)
    in.fail(header + static_cast<int64_t>(payload), std::to_string(left - payload) + " trailing bytes after the " +
                                                        std::to_string(payload) + " data bytes the header describes (" +
                                                        claim + ")");
  return sizes;
}

// The data after the header, then a check that nothing follows (a gzip stream's length is only
// known once it is inflated).
void read_payload(ByteReader& in, uint8_t* dst, uint64_t n, const std::string& claim) {
  int64_t start = in.position();
  size_t got = in.read_some(dst, static_cast<size_t>(n));
  if (got < n)
    in.fail(in.position(), "the data ends at byte offset " + std::to_string(in.position()) +
                               ", but the header claims " + claim + ": " + std::to_string(n) +
                               " bytes from byte offset " + std::to_string(start));
  if (!in.at_end())
    in.fail(in.position(),
            "trailing bytes after the " + std::to_string(n) + " data bytes the header describes (" + claim + ")");
}

}  // namespace

Tensor parse_idx_images(std::span<const uint8_t> bytes, const std::string& name) {
  ByteReader in(bytes, name);
  std::vector<uint64_t> s = read_header(in, 3, "image", "label");
  int64_t n = static_cast<int64_t>(s[0]), rows = static_cast<int64_t>(s[1]), cols = static_cast<int64_t>(s[2]);
  Tensor out = empty({n, 1, rows, cols}, DType::f32);
  // Inflate straight into the output's memory, then widen in place from the back.
  float* f = out.data<float>();
  uint8_t* raw = reinterpret_cast<uint8_t*>(f);
  uint64_t total = static_cast<uint64_t>(out.numel());
  read_payload(in, raw, total, std::to_string(n) + " images of " + std::to_string(rows) + "x" + std::to_string(cols));
  for (uint64_t i = total; i-- > 0;) f[i] = static_cast<float>(raw[i]) / 255.0f;
  return out;
}

Tensor parse_idx_labels(std::span<const uint8_t> bytes, const std::string& name) {
  ByteReader in(bytes, name);
  std::vector<uint64_t> s = read_header(in, 1, "label", "image");
  int64_t n = static_cast<int64_t>(s[0]);
  Tensor out = empty({n}, DType::i64);
  int64_t* l = out.data<int64_t>();
  uint8_t* raw = reinterpret_cast<uint8_t*>(l);
  read_payload(in, raw, static_cast<uint64_t>(n), std::to_string(n) + " labels");
  for (int64_t i = n; i-- > 0;) l[i] = raw[i];
  return out;
}

Tensor read_idx_images(const std::string& path) { return parse_idx_images(read_file(path), path); }
Tensor read_idx_labels(const std::string& path) { return parse_idx_labels(read_file(path), path); }

TensorDataset load_idx(const std::string& images_path, const std::string& labels_path, int64_t num_classes) {
  std::vector<uint8_t> label_bytes = read_file(labels_path);
  Tensor labels = parse_idx_labels(label_bytes, labels_path);
  // Check the image count in the header before inflating the images.
  std::vector<uint8_t> image_bytes = read_file(images_path);
  {
    ByteReader in(image_bytes, images_path);
    uint8_t header[8];
    if (in.read_some(header, 8) == 8 && big_endian(header) == 0x00000803u &&
        big_endian(header + 4) != static_cast<uint64_t>(labels.size(0)))
      in.fail(4, "the image file holds " + std::to_string(big_endian(header + 4)) + " images but " + labels_path +
                     " holds " + std::to_string(labels.size(0)) + " labels");
  }
  if (num_classes > 0) {
    const int64_t* l = labels.data<int64_t>();
    for (int64_t i = 0; i < labels.size(0); ++i)
      if (l[i] >= num_classes)
        throw FormatError(labels_path, 8 + i,
                          "label " + std::to_string(l[i]) + " of example " + std::to_string(i) + " is outside [0, " +
                              std::to_string(num_classes) + ")",
                          is_gzip(label_bytes));
  }
  return TensorDataset(parse_idx_images(image_bytes, images_path), labels);
}

}  // namespace plateau::data
