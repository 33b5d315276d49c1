#include "routing/route_table.hpp"

#include <algorithm>
#include <cassert>

// g++ 12 with -fsanitize reports a false -Wmaybe-uninitialized inside <regex>'s own
// std::function members; it would break a JN_WERROR + JN_SANITIZE build.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <fmt/format.h>

#include <regex>
#include <stdexcept>

namespace junction {

std::string_view to_string(Strategy s) {
  switch (s) {
    case Strategy::Single:
      return "single";
    case Strategy::Fork:
      return "fork";
    case Strategy::Hunt:
      return "hunt";
  }
  return "single";
}

std::optional<Strategy> strategy_from_string(std::string_view s) {
  if (s == "single") return Strategy::Single;
  if (s == "fork") return Strategy::Fork;
  if (s == "hunt") return Strategy::Hunt;
  return std::nullopt;
}

namespace {

enum class MatchKind : uint8_t { Exact, Prefix, Regex };

// A target template, parsed once at set_static so resolve() only concatenates.
struct RewritePiece {
  enum class Kind : uint8_t { Literal, Group, Rest } kind;
  uint8_t group = 0;  // for Group: 0 = whole uri
  std::string text;   // for Literal
};
using Rewrite = std::vector<RewritePiece>;

Rewrite parse_rewrite(std::string_view target, MatchKind match, unsigned group_count,
                      const std::string& origin) {
  auto fail = [&](std::string_view why) {
    throw std::invalid_argument(fmt::format("{}: target '{}': {}", origin, target, why));
  };
  Rewrite out;
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) out.push_back({RewritePiece::Kind::Literal, 0, std::move(literal)});
    literal.clear();
  };
  auto add_group = [&](unsigned n) {
    if (n > 0 && match != MatchKind::Regex) fail(fmt::format("${} needs a regex route", n));
    if (n > group_count) fail(fmt::format("${} but the regex has {} group(s)", n, group_count));
    flush();
    out.push_back({RewritePiece::Kind::Group, static_cast<uint8_t>(n), {}});
  };
  for (size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    if (c != '$') {
      literal += c;
      continue;
    }
    if (i + 1 >= target.size()) fail("'$' at the end (write $$ for a literal '$')");
    char next = target[i + 1];
    if (next == '$') {
      literal += '$';
      ++i;
    } else if (next >= '0' && next <= '9') {
      add_group(static_cast<unsigned>(next - '0'));
      ++i;
    } else if (next == '{') {
      size_t close = target.find('}', i + 2);
      if (close == std::string_view::npos) fail("unterminated '${'");
      std::string_view name = target.substr(i + 2, close - i - 2);
      if (name == "rest") {
        if (match != MatchKind::Prefix) fail("${rest} needs a prefix route");
        flush();
        out.push_back({RewritePiece::Kind::Rest, 0, {}});
      } else if (name.size() == 1 && name[0] >= '0' && name[0] <= '9') {
        add_group(static_cast<unsigned>(name[0] - '0'));
      } else {
        fail(fmt::format("unknown reference '${{{}}}'", name));
      }
      i = close;
    } else {
      fail(fmt::format("unknown reference '${}'", next));
    }
  }
  flush();
  return out;
}

// The literal text every match of `pattern` must start with ("door:(\\d+)" -> "door:"), so
// resolve() can skip a rule with one comparison instead of running the regex. Conservative:
// empty when unsure (alternation anywhere, a metacharacter first).
std::string regex_literal_prefix(std::string_view pattern) {
  if (pattern.find('|') != std::string_view::npos) return {};
  size_t i = pattern.starts_with('^') ? 1 : 0;
  std::string out;
  for (; i < pattern.size(); ++i) {
    if (std::string_view(".[]()*+?{}\\^$|").find(pattern[i]) != std::string_view::npos) break;
    out += pattern[i];
  }
  // "ab?" / "ab*" / "ab{0,2}": the quantifier makes the last literal optional
  if (i < pattern.size() && std::string_view("*?{").find(pattern[i]) != std::string_view::npos &&
      !out.empty())
    out.pop_back();
  return out;
}

// Static prefix rules of one kind, one map per distinct prefix length, longest first: a lookup
// probes one hash per length instead of scanning every prefix.
using PrefixLengths = std::vector<std::pair<size_t, StringMap<uint32_t>>>;

// Inserts; returns the rule already holding this exact prefix, if any.
std::optional<uint32_t> add_prefix(PrefixLengths& lengths, const std::string& prefix,
                                   uint32_t rule) {
  auto slot = std::find_if(lengths.begin(), lengths.end(),
                           [&](const auto& p) { return p.first == prefix.size(); });
  if (slot == lengths.end()) {
    auto at = std::find_if(lengths.begin(), lengths.end(),
                           [&](const auto& p) { return p.first < prefix.size(); });
    slot = lengths.emplace(at, prefix.size(), StringMap<uint32_t>{});
  }
  auto [it, inserted] = slot->second.emplace(prefix, rule);
  if (!inserted) return it->second;
  return std::nullopt;
}

}  // namespace

struct RouteTable::StaticIndex {
  struct Rule {
    MatchKind match;
    std::optional<std::regex> regex;
    std::vector<Rewrite> targets;
    std::string description;    // for Resolution::via
    std::string regex_literal;  // every match starts with this
  };
  std::vector<StaticRoute> routes;  // as given, for to_json()
  std::vector<Rule> rules;          // same indexes as routes
  StringMap<uint32_t> exact;
  // Prefixes are grouped by the scheme they spell out ("tel:+86" -> "tel"), so a URI only
  // probes the lengths used in its own scheme. A prefix without ':' ("te") lies entirely before
  // any URI's first ':' and so is shorter than every prefix of the URI's scheme group: probing
  // the scheme group first, then these, keeps "longest wins".
  StringMap<PrefixLengths> prefixes_by_scheme;
  PrefixLengths prefixes_without_scheme;
  std::vector<uint32_t> regexes;  // conf order
};

// The static rules already applied on the current resolution path (at most kMaxDepth).
class RouteTable::PathRules {
 public:
  bool contains(uint32_t rule) const {
    return std::find(rules_, rules_ + count_, rule) != rules_ + count_;
  }
  void push(uint32_t rule) {
    assert(count_ < kMaxDepth);
    rules_[count_++] = rule;
  }
  void pop() {
    assert(count_ > 0);
    --count_;
  }

 private:
  uint32_t rules_[kMaxDepth];
  int count_ = 0;
};

RouteTable::RouteTable() : static_(std::make_unique<StaticIndex>()) {}
RouteTable::~RouteTable() = default;

void RouteTable::set_static(std::vector<StaticRoute> routes) {
  auto index = std::make_unique<StaticIndex>();
  index->rules.reserve(routes.size());
  for (uint32_t i = 0; i < routes.size(); ++i) {
    const StaticRoute& r = routes[i];
    auto fail = [&](std::string_view why) {
      throw std::invalid_argument(fmt::format("{}: {}", r.origin, why));
    };
    StaticIndex::Rule rule;
    if (r.match == "exact") {
      rule.match = MatchKind::Exact;
    } else if (r.match == "prefix") {
      rule.match = MatchKind::Prefix;
    } else if (r.match == "regex") {
      rule.match = MatchKind::Regex;
    } else {
      fail(fmt::format("unknown match '{}' (expected exact, prefix or regex)", r.match));
    }
    if (r.pattern.empty()) fail("empty pattern");
    if (r.targets.empty()) fail("no targets");
    if (r.strategy == Strategy::Single && r.targets.size() > 1)
      fail(fmt::format("strategy single with {} targets (use fork or hunt)", r.targets.size()));
    unsigned groups = 0;
    if (rule.match == MatchKind::Regex) {
      try {
        rule.regex.emplace(r.pattern, std::regex::ECMAScript | std::regex::optimize);
      } catch (const std::regex_error& e) {
        fail(fmt::format("bad regex '{}': {}", r.pattern, e.what()));
      }
      groups = rule.regex->mark_count();
    }
    for (const std::string& t : r.targets) {
      if (t.empty()) fail("empty target");
      rule.targets.push_back(parse_rewrite(t, rule.match, groups, r.origin));
    }
    rule.description = fmt::format("static {} '{}' ({})", r.match, r.pattern, r.origin);

    // Two identical exact/prefix patterns could never both apply: a conf mistake.
    auto duplicate = [&](uint32_t other) {
      fail(fmt::format("duplicate {} pattern '{}' (first at {})", r.match, r.pattern,
                       routes[other].origin));
    };
    if (rule.match == MatchKind::Exact) {
      auto [it, inserted] = index->exact.emplace(r.pattern, i);
      if (!inserted) duplicate(it->second);
    } else if (rule.match == MatchKind::Prefix) {
      size_t colon = r.pattern.find(':');
      PrefixLengths& group = colon == std::string::npos
                                 ? index->prefixes_without_scheme
                                 : index->prefixes_by_scheme[r.pattern.substr(0, colon)];
      if (auto other = add_prefix(group, r.pattern, i)) duplicate(*other);
    } else {
      rule.regex_literal = regex_literal_prefix(r.pattern);
      index->regexes.push_back(i);
    }
    index->rules.push_back(std::move(rule));
  }
  index->routes = std::move(routes);
  static_ = std::move(index);  // nothing above touched the live table
}

const std::vector<StaticRoute>& RouteTable::static_routes() const { return static_->routes; }

uint32_t RouteTable::intern_plugin(std::string_view plugin) {
  if (auto it = plugin_ids_.find(plugin); it != plugin_ids_.end()) return it->second;
  auto id = static_cast<uint32_t>(plugin_names_.size());
  plugin_names_.emplace_back(plugin);
  plugin_ids_.emplace(std::string(plugin), id);
  return id;
}

std::optional<uint32_t> RouteTable::find_plugin(std::string_view plugin) const {
  if (auto it = plugin_ids_.find(plugin); it != plugin_ids_.end()) return it->second;
  return std::nullopt;
}

jn_status RouteTable::add_dynamic(std::string uri, std::string plugin, jn_handle* out_route) {
  if (out_route) *out_route = JN_INVALID_HANDLE;
  if (uri.empty() || plugin.empty()) return JN_ERR_INVALID;
  if (auto it = dynamic_by_uri_.find(uri); it != dynamic_by_uri_.end()) {
    if (plugin_names_[it->second.plugin_id] != plugin) return JN_ERR_EXISTS;
    if (out_route) *out_route = it->second.handle;
    return JN_OK;
  }
  uint32_t plugin_id = intern_plugin(plugin);
  auto [it, inserted] = dynamic_by_uri_.emplace(std::move(uri), DynamicEntry{0, plugin_id});
  assert(inserted);
  it->second.handle =
      dynamic_.insert(std::make_unique<DynamicRoute>(DynamicRoute{&it->first, plugin_id}));
  if (out_route) *out_route = it->second.handle;
  return JN_OK;
}

jn_handle RouteTable::add_dynamic(std::string uri, std::string plugin) {
  jn_handle h = JN_INVALID_HANDLE;
  add_dynamic(std::move(uri), std::move(plugin), &h);
  return h;
}

bool RouteTable::remove_dynamic(jn_handle route) {
  std::unique_ptr<DynamicRoute> r = dynamic_.take(route);
  if (!r) return false;
  size_t erased = dynamic_by_uri_.erase(*r->uri);
  assert(erased == 1);
  (void)erased;
  return true;
}

jn_status RouteTable::remove_dynamic(jn_handle route, std::string_view plugin) {
  const DynamicRoute* r = dynamic_.get(route);
  if (!r) return JN_ERR_NOT_FOUND;
  if (plugin_names_[r->plugin_id] != plugin) return JN_ERR_INVALID;
  remove_dynamic(route);
  return JN_OK;
}

size_t RouteTable::remove_plugin(std::string_view plugin) {
  for (auto it = namespaces_.begin(); it != namespaces_.end();)
    it = it->second == plugin ? namespaces_.erase(it) : std::next(it);
  std::optional<uint32_t> id = find_plugin(plugin);
  if (!id) return 0;
  std::vector<jn_handle> doomed;
  dynamic_.for_each([&](jn_handle h, const DynamicRoute& r) {
    if (r.plugin_id == *id) doomed.push_back(h);
  });
  for (jn_handle h : doomed) remove_dynamic(h);
  return doomed.size();
}

size_t RouteTable::dynamic_count() const { return dynamic_.size(); }

void RouteTable::set_namespace_owner(std::string scheme, std::string plugin) {
  namespaces_.insert_or_assign(std::move(scheme), std::move(plugin));
}

void RouteTable::clear_namespace(std::string_view scheme) {
  if (auto it = namespaces_.find(scheme); it != namespaces_.end()) namespaces_.erase(it);
}

std::optional<std::string> RouteTable::namespace_owner(std::string_view scheme) const {
  if (auto it = namespaces_.find(scheme); it != namespaces_.end()) return it->second;
  return std::nullopt;
}

std::optional<Resolution> RouteTable::resolve(std::string_view uri) const {
  PathRules used;
  return resolve_at(uri, used, 0);
}

std::optional<Resolution> RouteTable::resolve_at(std::string_view uri, PathRules& used,
                                                 int depth) const {
  const StaticIndex& index = *static_;

  // 1. The first static rule that matches and is not already on this path.
  std::optional<uint32_t> rule_index;
  std::string_view rest;
  std::cmatch groups;
  if (auto it = index.exact.find(uri); it != index.exact.end() && !used.contains(it->second))
    rule_index = it->second;
  auto probe_prefixes = [&](const PrefixLengths& lengths) {
    for (const auto& [length, by_prefix] : lengths) {
      if (length > uri.size()) continue;
      auto it = by_prefix.find(uri.substr(0, length));
      if (it != by_prefix.end() && !used.contains(it->second)) {
        rule_index = it->second;
        rest = uri.substr(length);
        return;
      }
    }
  };
  if (!rule_index && !index.prefixes_by_scheme.empty()) {
    if (size_t colon = uri.find(':'); colon != std::string_view::npos) {
      auto group = index.prefixes_by_scheme.find(uri.substr(0, colon));
      if (group != index.prefixes_by_scheme.end()) probe_prefixes(group->second);
    }
  }
  if (!rule_index) probe_prefixes(index.prefixes_without_scheme);
  for (size_t r = 0; !rule_index && r < index.regexes.size(); ++r) {
    uint32_t i = index.regexes[r];
    const StaticIndex::Rule& rule = index.rules[i];
    if (!uri.starts_with(rule.regex_literal) || used.contains(i)) continue;
    if (std::regex_match(uri.data(), uri.data() + uri.size(), groups, *rule.regex)) rule_index = i;
  }

  if (rule_index) {
    // Past the depth limit the path is dropped rather than guessed at.
    if (depth >= kMaxDepth) return std::nullopt;
    const StaticIndex::Rule& rule = index.rules[*rule_index];
    const StaticRoute& route = index.routes[*rule_index];

    std::vector<std::string> rewritten;
    rewritten.reserve(rule.targets.size());
    for (const Rewrite& target : rule.targets) {
      std::string out;
      for (const RewritePiece& piece : target) {
        switch (piece.kind) {
          case RewritePiece::Kind::Literal:
            out += piece.text;
            break;
          case RewritePiece::Kind::Rest:
            out += rest;
            break;
          case RewritePiece::Kind::Group:
            if (piece.group == 0)
              out += uri;
            else if (groups[piece.group].matched)
              out.append(groups[piece.group].first, groups[piece.group].second);
            break;
        }
      }
      rewritten.push_back(std::move(out));
    }

    Resolution result{route.strategy, route.timeout_ms, {}, rule.description};
    used.push(*rule_index);
    for (const std::string& target : rewritten) {
      std::optional<Resolution> sub = resolve_at(target, used, depth + 1);
      if (!sub) continue;
      // A Single rule is an alias: it takes on what its one target resolves to. Otherwise a
      // nested fork/hunt flattens into this rule's list (the call model is one level deep).
      if (route.strategy == Strategy::Single && sub->targets.size() > 1) {
        result.strategy = sub->strategy;
        result.timeout_ms = sub->timeout_ms;
      }
      for (RouteTarget& t : sub->targets) {
        if (result.targets.size() >= kMaxTargets) break;
        if (std::find(result.targets.begin(), result.targets.end(), t) == result.targets.end())
          result.targets.push_back(std::move(t));
      }
    }
    used.pop();
    if (result.targets.empty()) return std::nullopt;
    return result;
  }

  // 2. A dynamic exact route.
  if (auto it = dynamic_by_uri_.find(uri); it != dynamic_by_uri_.end()) {
    const std::string& plugin = plugin_names_[it->second.plugin_id];
    Resolution result{Strategy::Single, 0, {}, "dynamic"};
    result.targets.push_back({std::string(uri), plugin});
    return result;
  }

  // 3. The owner of the scheme.
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  auto owner = namespaces_.find(uri.substr(0, colon));
  if (owner == namespaces_.end()) return std::nullopt;
  Resolution result{Strategy::Single, 0, {}, {}};
  result.via = fmt::format("namespace '{}'", owner->first);
  result.targets.push_back({std::string(uri), owner->second});
  return result;
}

std::optional<std::string> RouteTable::lookup_json(std::string_view uri) const {
  std::optional<Resolution> r = resolve(uri);
  if (!r) return std::nullopt;
  nlohmann::json targets = nlohmann::json::array();
  for (const RouteTarget& t : r->targets) targets.push_back({{"uri", t.uri}, {"plugin", t.plugin}});
  nlohmann::json j = {{"strategy", to_string(r->strategy)},
                      {"timeout_ms", r->timeout_ms},
                      {"via", r->via},
                      {"targets", std::move(targets)}};
  return j.dump();
}

nlohmann::json RouteTable::to_json() const {
  nlohmann::json statics = nlohmann::json::array();
  for (const StaticRoute& r : static_->routes) {
    statics.push_back({{"match", r.match},
                       {"pattern", r.pattern},
                       {"targets", r.targets},
                       {"strategy", to_string(r.strategy)},
                       {"timeout_ms", r.timeout_ms},
                       {"origin", r.origin}});
  }
  nlohmann::json dynamics = nlohmann::json::array();
  dynamic_.for_each([&](jn_handle h, const DynamicRoute& r) {
    dynamics.push_back({{"id", h}, {"uri", *r.uri}, {"plugin", plugin_names_[r.plugin_id]}});
  });
  nlohmann::json namespaces = nlohmann::json::object();
  for (const auto& [scheme, plugin] : namespaces_) namespaces[scheme] = plugin;
  return {{"static", std::move(statics)},
          {"dynamic", std::move(dynamics)},
          {"namespaces", std::move(namespaces)}};
}

}  // namespace junction
