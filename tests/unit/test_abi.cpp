// The has-field rule from the plugin's side (plugin.hpp's factory against host tables of other
// lengths and majors) and from the core's (a struct shorter than the core's is read only as far
// as it goes).
#include <doctest/doctest.h>

#include <junction/plugin.hpp>

#include <cstring>
#include <string>

#include "host/plugin_host.hpp"

namespace {

struct Probe : junction::sdk::Plugin {
  Probe(junction::sdk::Host h, const jn_create_args&) : Plugin(h) {}
};

std::string g_error;  // what the plugin told the fake core's set_error (test-only)
void fake_set_error(jn_host_ctx*, jn_str m) { g_error.assign(m.ptr, m.len); }

jn_host_api table_like_core() {
  jn_host_api api{};
  api.struct_size = sizeof(jn_host_api);
  api.abi_major = JN_ABI_MAJOR;
  api.abi_minor = JN_ABI_MINOR;
  api.set_error = fake_set_error;
  return api;
}

jn_status create(const jn_host_api& api) {
  jn_create_args args{};
  args.struct_size = sizeof args;
  jn_plugin* self = nullptr;
  const jn_plugin_vtable* vt = nullptr;
  g_error.clear();
  jn_status st = junction::sdk::detail::create<Probe>(&api, nullptr, &args, &self, &vt);
  if (st == JN_OK) vt->on_destroy(self);
  return st;
}

}  // namespace

TEST_CASE("plugin.hpp accepts any 2.x table at least as long as 2.0's") {
  jn_host_api api = table_like_core();
  CHECK(create(api) == JN_OK);
  api.struct_size = JN_HOST_API_SIZE_2_0;  // a 2.0 core seen by a plugin of a later 2.x
  api.abi_minor = 0;
  CHECK(create(api) == JN_OK);
  api.struct_size = JN_HOST_API_SIZE_2_0 + 64;  // a later 2.x core with services we do not know
  api.abi_minor = 9;
  CHECK(create(api) == JN_OK);
}

TEST_CASE("plugin.hpp refuses a core of another major or a table shorter than 2.0, saying why") {
  jn_host_api api = table_like_core();
  api.abi_major = 1;
  api.abi_minor = 2;
  CHECK(create(api) == JN_ERR_ABI);
  CHECK(g_error == "plugin built for ABI " + std::to_string(JN_ABI_MAJOR) + "." + std::to_string(JN_ABI_MINOR) +
                       " cannot use this core's ABI 1.2");
  api = table_like_core();
  api.struct_size = JN_HOST_API_SIZE_2_0 - sizeof(void*);  // lacks anchor_end
  CHECK(create(api) == JN_ERR_ABI);
  CHECK(g_error.find("cannot use this core's ABI") != std::string::npos);
}

TEST_CASE("JN_HAS_FIELD reads a field only when the other side's struct holds all of it") {
  jn_tcp_options o{};
  o.struct_size = offsetof(jn_tcp_options, idle_timeout_ms);  // ends before idle_timeout_ms
  CHECK(JN_HAS_FIELD(&o, jn_tcp_options, max_frame));
  CHECK_FALSE(JN_HAS_FIELD(&o, jn_tcp_options, idle_timeout_ms));
  o.struct_size = offsetof(jn_tcp_options, idle_timeout_ms) + 2;  // half of it is not the field
  CHECK_FALSE(JN_HAS_FIELD(&o, jn_tcp_options, idle_timeout_ms));
  o.struct_size = sizeof o;
  CHECK(JN_HAS_FIELD(&o, jn_tcp_options, idle_timeout_ms));
  // The core's own table has every 2.0 service.
  CHECK(JN_HAS_FIELD(junction::PluginHost::api_table(), jn_host_api, anchor_end));
  CHECK(junction::PluginHost::api_table()->struct_size >= JN_HOST_API_SIZE_2_0);
}

TEST_CASE("2.2 state_dir: read through the has-field rule, empty from a 2.1 core") {
  const char dir[] = "/var/lib/junction/plugins/probe";
  // Garbage past a 2.1 core's struct must never be read as the field.
  struct {
    jn_create_args a;
    char tail[64];
  } mem{};
  std::memset(&mem, 0x5A, sizeof mem);
  mem.a.struct_size = JN_CREATE_ARGS_SIZE_2_1;
  mem.a.conf_path = junction::sdk::to_jn("x.toml");
  CHECK(junction::sdk::state_dir(mem.a).empty());
  jn_create_args a{};
  a.struct_size = sizeof a;
  a.state_dir = junction::sdk::to_jn(dir);
  CHECK(junction::sdk::state_dir(a) == dir);
  CHECK(JN_CREATE_ARGS_SIZE_2_1 == offsetof(jn_create_args, state_dir));
}

TEST_CASE("2.3 streamed HTTP: the request's stream field and the on_http_chunk hook are appended after 2.2") {
  // A 2.2 plugin's request ends at ca_file: the core must not see a stream field in it.
  CHECK(JN_HTTP_CLIENT_REQUEST_SIZE_2_2 == offsetof(jn_http_client_request, stream));
  jn_http_client_request q{};
  q.struct_size = JN_HTTP_CLIENT_REQUEST_SIZE_2_2;
  CHECK(!JN_HAS_FIELD(&q, jn_http_client_request, stream));
  q.struct_size = sizeof q;
  CHECK(JN_HAS_FIELD(&q, jn_http_client_request, stream));
  // A 2.2 vtable ends at on_work_done: the core's JN_HOOK finds no on_http_chunk in it.
  CHECK(JN_PLUGIN_VTABLE_SIZE_2_2 == offsetof(jn_plugin_vtable, on_http_chunk));
  jn_plugin_vtable vt{};
  vt.struct_size = JN_PLUGIN_VTABLE_SIZE_2_2;
  CHECK(!JN_HAS_FIELD(&vt, jn_plugin_vtable, on_http_chunk));
  // plugin.hpp plugins have it.
  CHECK(JN_HAS_FIELD(junction::sdk::detail::vtable(), jn_plugin_vtable, on_http_chunk));
  CHECK(static_cast<bool>(junction::sdk::detail::vtable()->on_http_chunk));
}
