// libFuzzer entry for the CIFAR parser: the bytes as CIFAR-10 and as CIFAR-100. A FormatError is the
// expected answer to a malformed input; anything else is a bug.
#include <cstddef>
#include <cstdint>

#include "data/formats/bytes.h"
#include "data/formats/cifar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  for (auto v : {plateau::data::CifarVariant::cifar10, plateau::data::CifarVariant::cifar100_fine}) {
    try {
      plateau::data::parse_cifar(bytes, v, "fuzz");
    } catch (const plateau::data::FormatError&) {
    }
  }
  return 0;
}
