// libFuzzer entry for the digits CSV parser, with the default layout (64 features and a label) and
// a small one (2 features) that short inputs can satisfy. A FormatError is the expected answer to a
// malformed input; anything else is a bug.
#include <cstddef>
#include <cstdint>

#include "data/formats/bytes.h"
#include "data/formats/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  for (int64_t features : {64, 2}) {
    try {
      plateau::data::parse_digits_csv(bytes, "fuzz", {.features = features});
    } catch (const plateau::data::FormatError&) {
    }
  }
  return 0;
}
