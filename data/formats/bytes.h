#pragma once
// What the file parsers share: the error type that names a file and a byte offset, reading a whole
// file, and a sequential reader over raw or gzip-compressed bytes (zlib) that knows how much data
// can possibly remain, so a parser can reject a header's claim before allocating for it.
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace plateau::data {

// A malformed file. The message is "plateau: <file>: byte offset <offset>: <what>", where the
// offset counts decompressed bytes (and says so) when the file is gzip-compressed.
class FormatError : public std::runtime_error {
 public:
  FormatError(const std::string& file, int64_t offset, const std::string& what, bool decompressed = false);
  const std::string& file() const { return file_; }
  int64_t offset() const { return offset_; }

 private:
  std::string file_;
  int64_t offset_;
};

// The whole file; throws std::runtime_error naming the path when it cannot be read.
std::vector<uint8_t> read_file(const std::string& path);

// gzip streams start with the bytes 1f 8b.
inline bool is_gzip(std::span<const uint8_t> bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// Reads `bytes` front to back, inflating them first when they are gzip (concatenated members
// included). Offsets are in the data as read (decompressed for gzip). Errors are FormatErrors that
// name `file`: a corrupt or truncated gzip stream names the compressed byte offset.
class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, std::string file);
  ~ByteReader();
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  bool compressed() const { return compressed_; }
  const std::string& file() const { return file_; }
  int64_t position() const { return position_; }
  // Reads up to n bytes; fewer only at the end of the data.
  size_t read_some(uint8_t* dst, size_t n);
  // Reads exactly n bytes, or throws "<what>: the data ends at byte offset P, N bytes short".
  void read_exact(uint8_t* dst, size_t n, const std::string& what);
  // Raw: the exact number of bytes left. gzip: an upper bound, deflate's maximum expansion (1032:1)
  // of the compressed bytes left, plus what is already inflated and not yet read.
  uint64_t max_remaining() const;
  // True when no byte is left (for gzip, inflates at most one byte to find out).
  bool at_end();
  // Everything left, refusing more than `limit` bytes.
  std::vector<uint8_t> read_rest(uint64_t limit, const std::string& what);
  [[noreturn]] void fail(int64_t offset, const std::string& what) const;

 private:
  size_t inflate_some(uint8_t* dst, size_t n);

  std::span<const uint8_t> bytes_;
  std::string file_;
  bool compressed_;
  int64_t position_ = 0;
  size_t raw_offset_ = 0;  // raw mode: next byte; gzip: compressed bytes consumed
  struct Gzip;
  std::unique_ptr<Gzip> gzip_;
  bool peeked_ = false;
  uint8_t peek_ = 0;
};

// Multiplies sizes of a header, or returns false on overflow past 2^62.
bool checked_product(std::initializer_list<uint64_t> factors, uint64_t& out);

}  // namespace plateau::data
