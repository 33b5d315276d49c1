// Core-owned OS resources handed to plugins as handles: timers, UDP sockets (batched receive
// straight into bus buffers, batched send without payload copies) and framed TCP streams.
// Only this folder and http/ touch libuv.
#pragma once

#include "http/http_server.hpp"

#include "host/plugin_host.hpp"

#include <optional>
#include <string>
#include <vector>

namespace junction {

class MediaLoop;
struct ReplyBatch;

// A core-owned UDP socket. On the control loop, or (media != nullptr) on a media loop: then
// only that loop's thread polls and reads it, and the control thread only sends on it, reads
// `local`, and hands it to the loop to close (MediaLoop::remove_socket).
struct UdpRes : Resource {
  UdpRes(PluginSlot* o, uint64_t c) : Resource(Kind::Udp, o, c) {}
  int fd = -1;
  uv_poll_t poll{};
  jn_addr local{};
  bool pktinfo = false;  // wildcard bind: each datagram's destination comes from IP_PKTINFO
  uint32_t max_datagram = 2048;
  uint32_t batch_hint = 4;  // datagrams to prepare for the next recvmmsg
  MediaLoop* media = nullptr;
  uint64_t* rx_packets = nullptr;
  uint64_t* rx_truncated = nullptr;
  uint64_t* tx_dropped = nullptr;
  uint64_t* tx_batched = nullptr;
  // Control loop, while a received batch is being delivered: replies to its datagrams' sources
  // are queued here and leave in one sendmmsg after the batch (see on_udp_readable).
  ReplyBatch* replies = nullptr;
  uint64_t reply_errors = 0;  // flushes of queued replies that failed (log rate limit)
};

// libuv's readable callback for every UDP socket (both kinds of loop).
void on_udp_readable(uv_poll_t* p, int status, int events);
// sendmmsg per run of items on the same socket; the media path's send.
jn_status udp_send_items(const jn_send* items, size_t count, UdpRes* (*resolve)(void*, jn_handle), void* arg);

// All create_* functions register the resource with the host and return JN_OK + handle, or a
// status with the reason put in the slot's error.
jn_status create_timer(PluginSlot& slot, uint64_t delay_ms, uint64_t repeat_ms, uint64_t cookie, jn_handle* out);
// quiet_in_use: a port already in use returns JN_ERR_EXISTS without a log line (port_bind tries on).
jn_status create_udp(PluginSlot& slot, std::string_view addr, const jn_udp_options* opts, uint64_t cookie, jn_handle* out,
                     bool quiet_in_use = false);
jn_status udp_local_addr(PluginSlot& slot, jn_handle sock, jn_addr* out);
jn_status udp_send(PluginSlot& slot, const jn_send* items, size_t count);
jn_status udp_join_multicast(PluginSlot& slot, jn_handle sock, std::string_view group, std::string_view iface);
jn_status create_tcp_listener(PluginSlot& slot, std::string_view addr, const jn_tcp_options* opts, uint64_t cookie, jn_handle* out,
                              bool quiet_in_use = false);
// The port_bind service: a socket (or an RTP/RTCP pair) on a free port of a named range.
jn_status port_bind(PluginSlot& slot, const jn_port_request* req, jn_handle* out, uint32_t* out_port);
jn_status create_tcp_connection(PluginSlot& slot, std::string_view addr, const jn_tcp_options* opts, uint64_t cookie, jn_handle* out);
jn_status tcp_send(PluginSlot& slot, jn_handle conn, const uint8_t* data, size_t len);
// Connections: flush, close, then JN_TCP_CLOSED. Listeners: closed at once.
jn_status tcp_close(PluginSlot& slot, jn_handle conn_or_listener);

jn_status tcp_set_cookie(PluginSlot& slot, jn_handle conn, uint64_t cookie);

// TCP connections on a media loop (jn_tcp_options.loop = k): the loop's side, called by
// MediaLoop on its thread with its run lock held (see media_loop.hpp).
struct TcpRes;
jn_handle tcp_loop_handle(const TcpRes* c);
void tcp_loop_start(TcpRes* c);                             // TcpStart: open / connect on the loop
void tcp_loop_write_framed(TcpRes* c, const std::string& bytes);  // a tcp_send made on the control loop
void tcp_loop_close(TcpRes* c);                             // graceful; at once when detached
void tcp_loop_set_cookie(TcpRes* c, uint64_t cookie);
void tcp_loop_detach(TcpRes* c);                            // no event reaches the plugin any more
bool tcp_loop_resume_reading(TcpRes* c);  // after a swap; false while its plugin is still held
// Control thread: a loop freed connection h; its proxy leaves the handle table if still there.
void tcp_loop_released(PluginHost& host, PluginSlot* origin, jn_handle h);

// Starts closing a libuv-backed resource; frees it in the close callback. For TCP
// connections a JN_TCP_CLOSED event reaches the owner (if still attached) first.
void close_io_resource(PluginHost& host, Resource* r);

// Simple resources that hold no OS handle.
struct ValueResource : Resource {
  using Resource::Resource;
  uint64_t id = 0;             // HttpEndpoint/WsConn/HttpRequest: the HttpServer's id; BusSub: subscription
  jn_handle inner = 0;         // Route: the route table's handle
  std::string* sink = nullptr; // StateSink: where state_append writes
  std::function<void(int, std::string)> reply;  // AdminReply
  std::optional<std::vector<MediaStream>>* anchored = nullptr;  // AnchorReply: where the answer goes
  bool answered = false;                                        // AnchorReply, WsUpgrade
  WsDecision* decision = nullptr;                               // WsUpgrade: where the reply goes
};

}  // namespace junction
