#pragma once
// Sequential: children applied in order, named "0", "1", ... as in PyTorch (so "1.weight" is the
// second module's weight), or by the names given to push_back.
//
//   auto net = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(784, 100),
//                                               std::make_shared<nn::ReLU>(),
//                                               std::make_shared<nn::Linear>(100, 10));
#include <memory>
#include <string>

#include "nn/module.h"

namespace plateau::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  template <typename M, typename... Ms>
  explicit Sequential(std::shared_ptr<M> first, std::shared_ptr<Ms>... rest) : Module("Sequential") {
    push_back(std::move(first));
    (push_back(std::move(rest)), ...);
  }

  // Appends a module named by its position.
  void push_back(std::shared_ptr<Module> module);
  void push_back(const std::string& name, std::shared_ptr<Module> module);
  Tensor forward(const Tensor& input) override;

  size_t size() const { return children().size(); }
  bool empty() const { return children().empty(); }
  const std::shared_ptr<Module>& operator[](size_t index) const;
  // The module at index as its concrete type; an error when it is not one.
  template <typename M>
  std::shared_ptr<M> at(size_t index) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[index]);
    if (!m) wrong_type(index);
    return m;
  }

 private:
  [[noreturn]] void wrong_type(size_t index) const;
};

}  // namespace plateau::nn
