#include "data/formats/bytes.h"

#include <zlib.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <new>

namespace plateau::data {

FormatError::FormatError(const std::string& file, int64_t offset, const std::string& what, bool decompressed)
    : std::runtime_error("plateau: " + file + ": byte offset " + std::to_string(offset) +
                         (decompressed ? " (after gzip decompression)" : "") + ": " + what),
      file_(file),
      offset_(offset) {}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("plateau: " + path + ": cannot open the file: " + std::strerror(errno));
  std::streamoff size = in.tellg();
  if (size < 0) throw std::runtime_error("plateau: " + path + ": cannot read the file size");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw std::runtime_error("plateau: " + path + ": reading the file failed after " + std::to_string(in.gcount()) +
                             " of " + std::to_string(size) + " bytes");
  return bytes;
}

bool checked_product(std::initializer_list<uint64_t> factors, uint64_t& out) {
  constexpr uint64_t limit = uint64_t(1) << 62;
  uint64_t p = 1;
  for (uint64_t f : factors) {
    if (f != 0 && p > limit / f) return false;
    p *= f;
  }
  out = p;
  return true;
}

struct ByteReader::Gzip {
  z_stream z{};
  bool ended = false;  // the last member's end was reached and no member follows
};

ByteReader::ByteReader(std::span<const uint8_t> bytes, std::string file)
    : bytes_(bytes), file_(std::move(file)), compressed_(is_gzip(bytes)) {
  if (!compressed_) return;
  gzip_ = std::make_unique<Gzip>();
  // 16 + MAX_WBITS: gzip wrapper only (header, CRC-32 and length are checked by zlib).
  int rc = inflateInit2(&gzip_->z, 16 + MAX_WBITS);
  if (rc == Z_MEM_ERROR) throw std::bad_alloc();
  if (rc != Z_OK)
    throw std::runtime_error("plateau: " + file_ + ": zlib inflateInit2 failed (code " + std::to_string(rc) + ")");
}

ByteReader::~ByteReader() {
  if (gzip_) inflateEnd(&gzip_->z);
}

void ByteReader::fail(int64_t offset, const std::string& what) const {
  throw FormatError(file_, offset, what, compressed_);
}

size_t ByteReader::inflate_some(uint8_t* dst, size_t n) {
  Gzip& g = *gzip_;
  size_t produced = 0;
  while (produced < n && !g.ended) {
    size_t in_left = bytes_.size() - raw_offset_;
    uInt in_chunk = static_cast<uInt>(std::min<size_t>(in_left, UINT_MAX));
    uInt out_chunk = static_cast<uInt>(std::min<size_t>(n - produced, UINT_MAX));
    g.z.next_in = const_cast<Bytef*>(bytes_.data() + raw_offset_);
    g.z.avail_in = in_chunk;
    g.z.next_out = dst + produced;
    g.z.avail_out = out_chunk;
    int rc = inflate(&g.z, Z_NO_FLUSH);
    raw_offset_ += in_chunk - g.z.avail_in;
    produced += out_chunk - g.z.avail_out;
    if (rc == Z_STREAM_END) {
      // Another gzip member may follow (gzip allows concatenation); anything else is garbage.
      std::span<const uint8_t> rest = bytes_.subspan(raw_offset_);
      if (rest.empty()) {
        g.ended = true;
      } else if (is_gzip(rest)) {
        inflateReset(&g.z);
      } else {
        throw FormatError(file_, static_cast<int64_t>(raw_offset_),
                          std::to_string(rest.size()) + " bytes after the end of the gzip stream are not gzip data");
      }
    } else if (rc == Z_MEM_ERROR) {
      throw std::bad_alloc();
    } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_STREAM_ERROR) {
      throw FormatError(file_, static_cast<int64_t>(raw_offset_),
                        std::string("corrupt gzip data (zlib: ") + (g.z.msg ? g.z.msg : "unknown error") + ")");
    } else if (rc == Z_BUF_ERROR ||
               (rc == Z_OK && g.z.avail_in == 0 && raw_offset_ == bytes_.size() && g.z.avail_out > 0)) {
      // No progress possible: the input ran out before the end of the stream.
      if (raw_offset_ == bytes_.size())
        throw FormatError(file_, static_cast<int64_t>(raw_offset_),
                          "truncated gzip stream: the compressed data ends (file size " +
                              std::to_string(bytes_.size()) + " bytes) before the end-of-stream marker");
      throw FormatError(file_, static_cast<int64_t>(raw_offset_), "gzip stream makes no progress (zlib Z_BUF_ERROR)");
    }
  }
  return produced;
}

size_t ByteReader::read_some(uint8_t* dst, size_t n) {
  size_t got = 0;
  if (peeked_ && n > 0) {
    dst[0] = peek_;
    peeked_ = false;
    got = 1;
  }
  if (!compressed_) {
    size_t take = std::min(n - got, bytes_.size() - raw_offset_);
    if (take > 0) std::memcpy(dst + got, bytes_.data() + raw_offset_, take);
    raw_offset_ += take;
    got += take;
  } else {
    got += inflate_some(dst + got, n - got);
  }
  position_ += static_cast<int64_t>(got);
  return got;
}

void ByteReader::read_exact(uint8_t* dst, size_t n, const std::string& what) {
  size_t got = read_some(dst, n);
  if (got < n)
    fail(position_, what + ": the data ends at byte offset " + std::to_string(position_) + ", " +
                        std::to_string(n - got) + " bytes short of the " + std::to_string(n) + " needed");
}

uint64_t ByteReader::max_remaining() const {
  uint64_t left = bytes_.size() - raw_offset_;
  if (!compressed_) return left + (peeked_ ? 1 : 0);
  if (gzip_->ended) return peeked_ ? 1 : 0;
  // Deflate emits at most 258 bytes per 2 bits of input (1032:1); the window may also hold up to
  // 32 KiB inflated from input already consumed. Generous, but it bounds a header's claim.
  return left * 1032 + (uint64_t(1) << 15) + 1024;
}

bool ByteReader::at_end() {
  if (peeked_) return false;
  uint8_t b;
  size_t got = compressed_ ? inflate_some(&b, 1) : (raw_offset_ < bytes_.size() ? (b = bytes_[raw_offset_++], 1) : 0);
  if (got == 0) return true;
  peek_ = b;
  peeked_ = true;
  return false;
}

std::vector<uint8_t> ByteReader::read_rest(uint64_t limit, const std::string& what) {
  std::vector<uint8_t> out;
  if (!compressed_) {
    if (max_remaining() > limit)
      fail(position_,
           what + ": " + std::to_string(max_remaining()) + " bytes exceed the limit of " + std::to_string(limit));
    out.resize(max_remaining());
    read_exact(out.data(), out.size(), what);
    return out;
  }
  constexpr size_t chunk = 1 << 16;
  for (;;) {
    size_t old = out.size();
    if (old >= limit && !at_end())
      fail(position_, what + ": more than the limit of " + std::to_string(limit) + " bytes after decompression");
    out.resize(old + chunk);
    size_t got = read_some(out.data() + old, chunk);
    out.resize(old + got);
    if (got < chunk) return out;
  }
}

}  // namespace plateau::data
