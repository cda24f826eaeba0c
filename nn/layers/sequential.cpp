#include "nn/layers/sequential.h"

#include <stdexcept>

namespace plateau::nn {

void Sequential::push_back(std::shared_ptr<Module> module) { push_back(std::to_string(size()), std::move(module)); }

void Sequential::push_back(const std::string& name, std::shared_ptr<Module> module) {
  add_child(name, std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& [name, module] : children()) x = (*module)(x);
  return x;
}

const std::shared_ptr<Module>& Sequential::operator[](size_t index) const {
  if (index >= size())
    throw std::out_of_range("plateau: Sequential index " + std::to_string(index) + " is out of range for " +
                            std::to_string(size()) + " modules");
  return children()[index].second;
}

void Sequential::wrong_type(size_t index) const {
  throw std::invalid_argument("plateau: Sequential module " + std::to_string(index) + " is a " +
                              (*this)[index]->type_name() + ", not the type asked for");
}

}  // namespace plateau::nn
