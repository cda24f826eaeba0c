#pragma once
// nn::Module: named parameters, buffers and children, train/eval, forward hooks, a functional call
// with an explicit parameter map, and state_dict as safetensors (interchangeable with PyTorch's
// names: "layer1.0.conv1.weight").
//
//   class Block : public nn::Module {
//    public:
//     Block(int64_t in, int64_t out) : Module("Block") {
//       fc = register_module("fc", std::make_shared<nn::Linear>(in, out));
//       register_parameter("scale", scale_, nn::ParamRole::norm);
//     }
//     Tensor forward(const Tensor& x) override { return (*fc)(x) * scale_; }
//     std::shared_ptr<nn::Linear> fc;
//    private:
//     Tensor scale_ = ones({1});
//   };
//
// A module registers its members by address: parameters and buffers stay ordinary Tensor members
// that forward() uses directly, and the module swaps what they hold for a functional call or loads
// values into them in place. Modules are therefore neither copied nor moved once built: create them
// with std::make_shared.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/core.h"

namespace plateau::nn {

// What a parameter is for. Methods disagree on what to perturb or decay (ASAM scales weights but not
// biases, SAM variants skip norm layers), so they filter on the role and the module path.
enum class ParamRole { weight, bias, norm, embedding, other };
const char* role_name(ParamRole role);

struct NamedParameter {
  std::string name;  // the full path, "layer1.0.conv1.weight"
  Tensor tensor;
  ParamRole role;
};

class Module;
// Sees the module, its input and its output after forward(); returns a replacement output or an
// undefined tensor to keep it.
using ModuleForwardHook = std::function<Tensor(Module& module, const Tensor& input, const Tensor& output)>;

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The layer's computation. Call the module (operator()) rather than forward() so hooks run.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input);

  const std::string& type_name() const { return type_name_; }

  // Registration, from the constructor. The member is owned by the module and must outlive it.
  // A parameter gets requires_grad; a buffer (running statistics) does not.
  void register_parameter(const std::string& name, Tensor& member, ParamRole role = ParamRole::weight);
  void register_buffer(const std::string& name, Tensor& member);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // Everything below is recursive, in registration order, children after their parent's own.
  std::vector<NamedParameter> named_parameters() const;
  TensorList parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // Every module with its path ("" for this one).
  std::vector<std::pair<std::string, Module*>> named_modules();
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  int64_t parameter_count() const;

  // Moves every parameter and buffer to `device` (new leaf tensors holding the same values, with the
  // same requires_grad and names). Optimizers hold the tensors they were given: call this first.
  void to(Device device);

  // Training mode (batch statistics, dropout) or evaluation mode, for this module and its children.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Hooks run after forward() in registration order; the handle removes the hook when destroyed.
  class HookHandle {
   public:
    HookHandle() = default;
    HookHandle(Module* module, uint64_t id) : module_(module), id_(id) {}
    HookHandle(HookHandle&& o) noexcept : module_(o.module_), id_(o.id_) { o.module_ = nullptr; }
    HookHandle& operator=(HookHandle&& o) noexcept;
    ~HookHandle() { remove(); }
    void remove();

   private:
    Module* module_ = nullptr;
    uint64_t id_ = 0;
  };
  [[nodiscard]] HookHandle register_forward_hook(ModuleForwardHook hook);

  // forward(input) with the parameters named in `params` (paths as named_parameters gives them)
  // replaced by the given tensors, which may carry a graph (MAML's fast weights); the module's own
  // parameters are back in place afterwards, also when forward throws. Unknown names are an error.
  Tensor functional_call(const std::map<std::string, Tensor>& params, const Tensor& input);

  // Parameters and buffers by path. load_state_dict copies values into the existing tensors (shapes
  // and dtypes must match); with strict, missing and unexpected names are errors that list them.
  io::TensorMap state_dict() const;
  void load_state_dict(const io::TensorMap& state, bool strict = true);
  void save(const std::string& path, const io::Metadata& metadata = {}) const;  // safetensors, atomic
  void load(const std::string& path, bool strict = true);

  // A tree of the modules with their parameter counts, one per line.
  std::string str() const;

 protected:
  void add_child(const std::string& name, std::shared_ptr<Module> module);

 private:
  struct Slot {
    std::string name;
    Tensor* member;
    ParamRole role;
  };
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) const;
  void collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;
  void collect_modules(const std::string& prefix, std::vector<std::pair<std::string, Module*>>& out);
  // Every slot with its path, parameters then buffers (for functional_call and load_state_dict).
  void collect_slots(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& params,
                     std::vector<std::pair<std::string, Tensor*>>& buffers);
  void check_name(const std::string& name, const char* what) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<Slot> parameters_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<std::pair<uint64_t, ModuleForwardHook>> hooks_;
  uint64_t next_hook_id_ = 1;
};

// Whether batch norm layers in training mode update their running statistics. Two-pass methods
// (SAM's second forward) turn it off for one pass; see Note [BN in two-pass steps] in optim/.
bool running_stats_update_enabled();
class RunningStatsGuard {
 public:
  explicit RunningStatsGuard(bool update);
  ~RunningStatsGuard();
  RunningStatsGuard(const RunningStatsGuard&) = delete;
  RunningStatsGuard& operator=(const RunningStatsGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace plateau::nn
