// Hash maps keyed by std::string that can be probed with a std::string_view without building
// a temporary string (C++20 heterogeneous lookup for unordered containers).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace junction {

struct TransparentStringHash {
  using is_transparent = void;
  // Deliberately not noexcept: libstdc++ stores each node's hash code only for hashers that
  // are "slow" or may throw. Without the stored code a lookup re-hashes the keys of the nodes
  // it walks past (touching their heap strings): 4x slower at a million routes.
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <typename V>
using StringMap = std::unordered_map<std::string, V, TransparentStringHash, std::equal_to<>>;

}  // namespace junction
