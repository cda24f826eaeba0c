#pragma once
// Walks the tape below a set of nodes in post-order: a node is visited after every node its edges
// point to. Iterative (graphs are as deep as the model), each node once. Internal to core/autograd.
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/autograd/node.h"

namespace plateau::autograd {

template <typename Nodes, typename Visit>
void for_each_post_order(const Nodes& starts, Visit visit) {
  std::unordered_set<Node*> done;
  std::vector<std::pair<Node*, size_t>> stack;
  for (Node* start : starts) {
    if (done.count(start)) continue;
    stack.push_back({start, 0});
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      const auto& edges = n->next_edges();
      if (next < edges.size()) {
        Node* child = edges[next++].node.get();
        if (child && !done.count(child)) stack.push_back({child, 0});
        continue;
      }
      Node* finished = n;
      done.insert(finished);
      stack.pop_back();
      visit(finished);
    }
  }
}

}  // namespace plateau::autograd
