// Printing the tape, for teaching and debugging: every node reachable from the outputs, in the
// order backward runs them (latest first).
#include <algorithm>
#include <sstream>
#include <unordered_set>

#include "core/autograd/autograd.h"

namespace plateau {

namespace {

using autograd::Node;

std::vector<Node*> collect(const TensorList& outputs) {
  std::vector<Node*> nodes, stack;
  std::unordered_set<Node*> seen;
  for (const Tensor& o : outputs) {
    autograd::Edge e = autograd::gradient_edge(o);
    if (e.valid() && seen.insert(e.node.get()).second) stack.push_back(e.node.get());
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    nodes.push_back(n);
    for (const autograd::Edge& e : n->next_edges())
      if (e.valid() && seen.insert(e.node.get()).second) stack.push_back(e.node.get());
  }
  std::sort(nodes.begin(), nodes.end(), [](Node* a, Node* b) { return a->sequence_nr() > b->sequence_nr(); });
  return nodes;
}

std::string meta_str(const autograd::TensorMeta& m) { return m.shape.str() + " " + dtype_name(m.dtype); }

std::string label(const Node& n) {
  if (n.is_accumulator()) {
    auto leaf = static_cast<const autograd::AccumulateGrad&>(n).leaf();
    std::string name = leaf && !leaf->name.empty() ? leaf->name : "leaf";
    return name + " " + meta_str(n.output_meta()[0]);
  }
  return "#" + std::to_string(n.sequence_nr()) + " " + n.name();
}

}  // namespace

std::string tape_text(const TensorList& outputs) {
  std::ostringstream s;
  for (Node* n : collect(outputs)) {
    if (n->is_accumulator()) continue;
    s << label(*n) << "  (";
    for (size_t i = 0; i < n->input_meta().size(); ++i) {
      const autograd::Edge& e = n->next_edges()[i];
      s << (i ? ", " : "");
      if (!e.valid()) {
        s << "const";
        continue;
      }
      s << meta_str(n->input_meta()[i]) << " from "
        << (e.node->is_accumulator() ? label(*e.node) : "#" + std::to_string(e.node->sequence_nr()));
    }
    s << ") -> ";
    for (uint32_t i = 0; i < n->num_outputs(); ++i) s << (i ? ", " : "") << meta_str(n->output_meta()[i]);
    s << "\n";
  }
  return s.str();
}

std::string tape_dot(const TensorList& outputs) {
  std::ostringstream s;
  s << "digraph tape {\n  rankdir=BT;\n  node [shape=box, fontname=\"monospace\"];\n";
  for (Node* n : collect(outputs)) {
    std::string out_shapes;
    for (uint32_t i = 0; i < n->num_outputs(); ++i) out_shapes += (i ? ", " : "") + meta_str(n->output_meta()[i]);
    s << "  n" << n->sequence_nr() << " [label=\"" << label(*n);
    if (!n->is_accumulator()) s << "\\n" << out_shapes;
    s << "\"" << (n->is_accumulator() ? ", style=filled, fillcolor=lightblue" : "") << "];\n";
    for (size_t i = 0; i < n->next_edges().size(); ++i) {
      const autograd::Edge& e = n->next_edges()[i];
      if (e.valid())
        s << "  n" << e.node->sequence_nr() << " -> n" << n->sequence_nr() << " [label=\""
          << meta_str(n->input_meta()[i]) << "\"];\n";
    }
  }
  s << "}\n";
  return s.str();
}

}  // namespace plateau
