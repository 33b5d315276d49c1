// RouteTable: where a call to a URI goes.
//
// Addresses are URIs in plugin namespaces, "scheme:rest" ("intercom:room/101", "gb:3402...").
// Three sources, looked up in this order:
//   1. static routes from the conf: exact, then prefix (longest wins), then regex (conf order,
//      whole-string match); each target may rewrite the URI ($0, $1..$9, ${rest}) and is itself
//      resolved again, so a rule can point at another rule or at a plugin's namespace;
//   2. dynamic exact routes added by plugins (a device registered, a user logged in);
//   3. the plugin that owns the URI's scheme (target URI unchanged).
// Single-threaded: used from the core's control loop only.
#pragma once

#include <junction/abi.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "handles.hpp"
#include "routing/string_map.hpp"

namespace junction {

// Fork = ring all targets at once, first answer wins; Hunt = one target after another,
// timeout_ms per target; Single = exactly one target.
enum class Strategy { Single, Fork, Hunt };

std::string_view to_string(Strategy s);
// "single" | "fork" | "hunt"; nullopt for anything else (for the conf parser).
std::optional<Strategy> strategy_from_string(std::string_view s);

struct StaticRoute {
  std::string match;  // "exact" | "prefix" | "regex"
  std::string pattern;
  // Rewrite references: $0 whole URI, $1..$9 regex groups, ${rest} what follows a prefix,
  // ${N} for a group followed by a digit, $$ a literal '$'.
  std::vector<std::string> targets;
  Strategy strategy = Strategy::Single;
  uint32_t timeout_ms = 0;  // Hunt/Single: per target (0 = until reject); Fork: whole ring
  std::string origin;       // "conf/junction.toml:42", starts every error message
};

struct RouteTarget {
  std::string uri;
  std::string plugin;
  bool operator==(const RouteTarget&) const = default;
};

struct Resolution {
  Strategy strategy = Strategy::Single;
  uint32_t timeout_ms = 0;
  std::vector<RouteTarget> targets;
  std::string via;  // which rule matched first, for logs
};

class RouteTable {
 public:
  static constexpr int kMaxDepth = 8;          // chained static rewrites per path
  static constexpr size_t kMaxTargets = 1024;  // per resolution; the rest are dropped

  RouteTable();
  ~RouteTable();
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // Validates every route, then replaces the static table. Throws std::invalid_argument
  // ("<origin>: <what is wrong>") and leaves the table unchanged on any error.
  void set_static(std::vector<StaticRoute> routes);
  const std::vector<StaticRoute>& static_routes() const;

  // A dynamic exact route. JN_INVALID_HANDLE when uri is empty or already registered by
  // another plugin; the same plugin registering again gets its existing handle.
  jn_handle add_dynamic(std::string uri, std::string plugin);
  // The same with a status for the route_add host service: JN_OK, JN_ERR_INVALID (empty uri
  // or plugin), JN_ERR_EXISTS (another plugin holds the uri).
  jn_status add_dynamic(std::string uri, std::string plugin, jn_handle* out_route);
  bool remove_dynamic(jn_handle route);
  // For route_remove: JN_ERR_NOT_FOUND (stale), JN_ERR_INVALID (another plugin's route).
  jn_status remove_dynamic(jn_handle route, std::string_view plugin);
  // Drops the plugin's dynamic routes and namespaces; returns how many dynamic routes went.
  size_t remove_plugin(std::string_view plugin);
  size_t dynamic_count() const;

  // The scheme ("intercom", without ':') belongs to plugin; replaces a previous owner.
  void set_namespace_owner(std::string scheme, std::string plugin);
  void clear_namespace(std::string_view scheme);
  std::optional<std::string> namespace_owner(std::string_view scheme) const;

  // Where a call to uri goes; nullopt when no target resolves to a plugin.
  std::optional<Resolution> resolve(std::string_view uri) const;
  // resolve() as {"strategy":"fork","timeout_ms":..,"via":..,"targets":[{"uri":..,"plugin":..}]}.
  std::optional<std::string> lookup_json(std::string_view uri) const;
  // {"static":[...],"dynamic":[{"id","uri","plugin"}],"namespaces":{"scheme":"plugin"}}
  nlohmann::json to_json() const;

 private:
  struct StaticIndex;
  struct DynamicRoute {
    const std::string* uri;  // the key inside dynamic_by_uri_ (node-based map: stable)
    uint32_t plugin_id;
  };
  struct DynamicEntry {
    jn_handle handle;
    uint32_t plugin_id;
  };
  class PathRules;

  uint32_t intern_plugin(std::string_view plugin);
  std::optional<uint32_t> find_plugin(std::string_view plugin) const;
  std::optional<Resolution> resolve_at(std::string_view uri, PathRules& used, int depth) const;

  std::unique_ptr<const StaticIndex> static_;
  StringMap<DynamicEntry> dynamic_by_uri_;
  HandleTable<DynamicRoute> dynamic_;
  StringMap<std::string> namespaces_;  // scheme -> plugin
  // Plugin names are stored once; routes refer to them by index (a million routes share ~10).
  std::vector<std::string> plugin_names_;
  StringMap<uint32_t> plugin_ids_;
};

}  // namespace junction
