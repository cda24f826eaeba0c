#include "data/sources.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "data/formats/idx.h"

namespace plateau::data {

namespace {

namespace fs = std::filesystem;

// The file `stem` in dir, gzip-compressed or raw; empty when neither exists.
std::string find_file(const std::string& dir, const std::string& stem) {
  for (const char* suffix : {".gz", ""}) {
    std::string p = dir + "/" + stem + suffix;
    if (fs::is_regular_file(p)) return p;
  }
  return "";
}

TensorDataset load_mnist_like(const std::string& dir, SplitName split, const std::string& missing_hint) {
  std::string prefix = split == SplitName::train ? "train" : "t10k";
  std::string images = find_file(dir, prefix + "-images-idx3-ubyte"),
              labels = find_file(dir, prefix + "-labels-idx1-ubyte");
  if (images.empty() || labels.empty())
    throw std::runtime_error("plateau: " + dir + ": no " + prefix + "-" +
                             (images.empty() ? "images-idx3" : "labels-idx1") + "-ubyte.gz (or uncompressed) file" +
                             missing_hint);
  return load_idx(images, labels, 10);
}

}  // namespace

std::string bundled_data_dir() {
  if (const char* env = std::getenv("PLATEAU_DATA_DIR"); env && *env) return env;
  if (fs::is_directory(PLATEAU_DATA_SOURCE_DIR)) return PLATEAU_DATA_SOURCE_DIR;
  return PLATEAU_DATA_INSTALL_DIR;
}

TensorDataset load_mnist(const std::string& dir, SplitName split) {
  std::string hint = split == SplitName::train
                         ? ": plateau bundles only the MNIST test set (the training images are not redistributed "
                           "here); for 60,000 training images use Fashion-MNIST (load_fashion_mnist)"
                         : "";
  return load_mnist_like(dir, split, hint);
}

TensorDataset mnist_test_set() {
  std::string dir = bundled_data_dir() + "/mnist";
  return load_mnist_like(dir, SplitName::test,
                         ": the bundled MNIST test set is missing (set PLATEAU_DATA_DIR to a folder holding mnist/)");
}

TensorDataset load_fashion_mnist(SplitName split, const std::string& dir) {
  std::string hint =
      dir == fashion_mnist_dir
          ? ": install Debian's dataset-fashion-mnist package (sudo apt-get install dataset-fashion-mnist), "
            "which puts the four IDX files in " +
                std::string(fashion_mnist_dir)
          : ": pass the folder holding Fashion-MNIST's IDX files, or install Debian's "
            "dataset-fashion-mnist package and use the default folder";
  return load_mnist_like(dir, split, hint);
}

}  // namespace plateau::data
