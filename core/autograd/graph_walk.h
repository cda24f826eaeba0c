#pragma once
// Walks over the tape shared by the engine and the per-example pass (internal to core/autograd).
// Both are iterative: graphs are as deep as the model.
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/autograd/node.h"

namespace plateau::autograd {

// Calls visit_edge(child) once for every valid edge below `roots` (a node with two edges into it is
// visited twice: that counts the gradients it will receive) and adds every node reached to `seen`.
template <typename VisitEdge>
void for_each_edge_below(const std::vector<Node*>& roots, std::unordered_set<Node*>& seen, VisitEdge visit_edge) {
  std::vector<Node*> stack;
  for (Node* r : roots)
    if (r && seen.insert(r).second) stack.push_back(r);
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      visit_edge(e.node.get());
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }
}

// Visits each node below `starts` once, in post-order: after every node its edges point to.
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
