// libFuzzer entry for the IDX parser: the bytes as an image file and as a label file. A FormatError
// is the expected answer to a malformed input; anything else (a crash, a sanitizer report, another
// exception, an allocation past libFuzzer's -rss_limit_mb) is a bug.
#include <cstddef>
#include <cstdint>

#include "data/formats/bytes.h"
#include "data/formats/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  try {
    plateau::data::parse_idx_images(bytes, "fuzz");
  } catch (const plateau::data::FormatError&) {
  }
  try {
    plateau::data::parse_idx_labels(bytes, "fuzz");
  } catch (const plateau::data::FormatError&) {
  }
  return 0;
}
