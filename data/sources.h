#pragma once
// Where the datasets live: the bundled MNIST test set (data/bundled/mnist, see its PROVENANCE.md)
// and Fashion-MNIST from Debian's dataset-fashion-mnist package.
#include <string>

#include "data/dataset.h"

namespace plateau::data {

enum class SplitName { train, test };

// The folder holding the bundled datasets: $PLATEAU_DATA_DIR when set, else data/bundled in the
// source tree this library was built from, else the installed copy (<datadir>/plateau).
std::string bundled_data_dir();

// MNIST from `dir` ({train,t10k}-{images-idx3,labels-idx1}-ubyte, raw or .gz): [N, 1, 28, 28] f32
// in [0, 1], labels 0..9. Only the test split is bundled.
TensorDataset load_mnist(const std::string& dir, SplitName split);
// The bundled MNIST test set: 10,000 examples.
TensorDataset mnist_test_set();

// Where Debian's dataset-fashion-mnist installs the four IDX files.
inline constexpr const char* fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
// Fashion-MNIST (60,000 train / 10,000 test) from `dir`; when the files are missing, the error says
// to install the Debian package.
TensorDataset load_fashion_mnist(SplitName split, const std::string& dir = fashion_mnist_dir);

}  // namespace plateau::data
