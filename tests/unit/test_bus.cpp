// BufferPool, PacketBus, address helpers and the zero-copy send message builder.
#include "bus/addr.hpp"
#include "bus/buffer_pool.hpp"
#include "host/media_loop.hpp"
#include "bus/packet_bus.hpp"
#include "bus/zero_copy_send.hpp"

#include <doctest/doctest.h>

#include <net/if.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace junction;

namespace {

BufferPool::Config small_pool(size_t max_buffers = 64, size_t prealloc = 8) {
  BufferPool::Config c;
  c.headroom = 32;
  c.buffer_size = 256;
  c.max_buffers = max_buffers;
  c.prealloc = prealloc;
  return c;
}

// Records what it was given and optionally runs an action inside the callback.
struct RecordingSink : BusSink {
  std::vector<jn_buf*> bufs;
  std::vector<uint64_t> cookies;
  std::vector<bool> shared;
  BufferPool* pool = nullptr;
  std::function<void(uint64_t, jn_buf*)> action;

  void on_bus_packet(uint64_t subscription, uint64_t cookie, jn_buf* buf) override {
    bufs.push_back(buf);
    cookies.push_back(cookie);
    if (pool) shared.push_back(pool->is_shared(buf));
    if (action) action(subscription, buf);
  }
};

}  // namespace

// ------------------------------------------------------------------------------------------
// BufferPool
// ------------------------------------------------------------------------------------------

TEST_CASE("alloc sets the layout the ABI describes") {
  BufferPool pool(small_pool());
  jn_buf* b = pool.alloc(100);
  REQUIRE(b);
  CHECK(b->len == 100);
  CHECK(b->headroom == 32);
  CHECK(b->tailroom == 156);
  CHECK(b->flags == 0);
  CHECK(b->rx_ns == 0);
  CHECK(b->src.family == 0);
  CHECK(BufferPool::owner(b) == &pool);
  CHECK_FALSE(pool.is_shared(b));
  // Headroom and tailroom are really writable.
  std::memset(b->data - b->headroom, 0xab, b->headroom + b->len + b->tailroom);
  CHECK(pool.outstanding() == 1);
  pool.unref(b);
  CHECK(pool.outstanding() == 0);
}

TEST_CASE("refcount: ref makes a buffer shared, the last unref recycles it") {
  BufferPool pool(small_pool());
  jn_buf* b = pool.alloc(10);
  pool.ref(b);
  CHECK(pool.is_shared(b));
  pool.ref(b);
  pool.unref(b);
  CHECK(pool.is_shared(b));
  pool.unref(b);
  CHECK_FALSE(pool.is_shared(b));
  CHECK(pool.outstanding() == 1);
  pool.unref(b);
  CHECK(pool.outstanding() == 0);
}

TEST_CASE("a buffer released on another thread returns to its pool through the remote list") {
  BufferPool pool(small_pool(64, 64));
  std::vector<jn_buf*> bufs;
  for (int i = 0; i < 64; ++i) bufs.push_back(pool.alloc(10));
  CHECK(pool.alloc(10) == nullptr);  // full
  std::thread other([&] {
    for (jn_buf* b : bufs) BufferPool::unref(b);  // last reference dropped off the owner thread
  });
  other.join();
  // Not on the free list yet: still counted until the owner reclaims...
  CHECK(pool.outstanding() == 64);
  // ...which an allocation does by itself when the free list is dry.
  jn_buf* again = pool.alloc(10);
  REQUIRE(again != nullptr);
  CHECK(pool.outstanding() == 1);
  BufferPool::unref(again);
  CHECK(pool.reclaim_remote() == 0);
  CHECK(pool.outstanding() == 0);
}

TEST_CASE("refcounts stay exact under refs and unrefs from two threads at once") {
  BufferPool pool(small_pool(1024, 1024));
  std::vector<jn_buf*> bufs;
  for (int i = 0; i < 512; ++i) bufs.push_back(pool.alloc(10));
  // Each buffer gets 1000 extra references from each of two threads, dropped again; the owner
  // then drops the original one. Any lost update leaves a buffer outstanding or frees it early.
  auto churn = [&] {
    for (int round = 0; round < 1000; ++round)
      for (jn_buf* b : bufs) BufferPool::ref(b);
    for (int round = 0; round < 1000; ++round)
      for (jn_buf* b : bufs) BufferPool::unref(b);
  };
  std::thread t1(churn), t2(churn);
  t1.join();
  t2.join();
  for (jn_buf* b : bufs) CHECK_FALSE(BufferPool::is_shared(b));
  CHECK(pool.outstanding() == 512);
  for (jn_buf* b : bufs) BufferPool::unref(b);
  pool.reclaim_remote();
  CHECK(pool.outstanding() == 0);
}

TEST_CASE("a recycled buffer comes back reset") {
  BufferPool pool(small_pool());
  jn_buf* b = pool.alloc(50);
  b->data -= 12;  // prepend a header
  b->len += 12;
  b->headroom -= 12;
  b->flags = JN_BUF_MARKER;
  b->rx_ns = 42;
  b->src.family = 4;
  b->dst.family = 6;
  b->meta.pts = 9000;
  b->meta.codec = JN_CODEC_H264;
  pool.unref(b);

  jn_buf* again = pool.alloc(20);
  CHECK(again == b);  // LIFO reuse of the warm slot
  CHECK(again->headroom == 32);
  CHECK(again->len == 20);
  CHECK(again->tailroom == 236);
  CHECK(again->flags == 0);
  CHECK(again->rx_ns == 0);
  CHECK(again->src.family == 0);
  CHECK(again->dst.family == 0);
  CHECK(again->meta.pts == 0);
  CHECK(again->meta.codec == JN_CODEC_NONE);
  pool.unref(again);
}

TEST_CASE("1M alloc/unref cycles do not grow the pool") {
  BufferPool pool(small_pool(1024, 16));
  size_t capacity = pool.capacity_buffers();
  size_t reserved = pool.bytes_reserved();
  CHECK(capacity == 16);
  int failed_allocs = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    jn_buf* b = pool.alloc(160);
    if (!b) {
      ++failed_allocs;
      continue;
    }
    pool.unref(b);
  }
  CHECK(failed_allocs == 0);
  CHECK(pool.capacity_buffers() == capacity);
  CHECK(pool.bytes_reserved() == reserved);

  // A working set bigger than the prealloc grows once, then stays put.
  std::vector<jn_buf*> held;
  for (int round = 0; round < 1000; ++round) {
    for (int i = 0; i < 100; ++i) held.push_back(pool.alloc(160));
    for (jn_buf* b : held) pool.unref(b);
    held.clear();
  }
  CHECK(pool.capacity_buffers() >= 100);
  CHECK(pool.capacity_buffers() <= 200);
  CHECK(pool.outstanding() == 0);
  CHECK(pool.exhausted_count() == 0);
}

TEST_CASE("oversize requests get a one-off heap buffer") {
  BufferPool pool(small_pool());
  size_t capacity = pool.capacity_buffers();
  size_t reserved = pool.bytes_reserved();
  jn_buf* big = pool.alloc(1000);
  REQUIRE(big);
  CHECK(big->len == 1000);
  CHECK(big->headroom == 32);
  CHECK(big->tailroom == 0);
  std::memset(big->data - big->headroom, 1, big->headroom + big->len);
  CHECK(pool.oversize_allocs() == 1);
  CHECK(pool.capacity_buffers() == capacity);
  CHECK(pool.bytes_reserved() > reserved);
  CHECK(pool.outstanding() == 1);
  pool.ref(big);
  CHECK(pool.is_shared(big));
  pool.unref(big);
  pool.unref(big);
  CHECK(pool.outstanding() == 0);
  // Kept for reuse (a 64 KB-datagram socket would otherwise malloc/free per datagram and
  // fragment the heap): the next oversize request of a similar size takes it.
  CHECK(pool.bytes_reserved() > reserved);
  jn_buf* again = pool.alloc(900);
  CHECK(again == big);
  CHECK(again->len == 900);
  CHECK(again->tailroom == 100);
  CHECK(pool.oversize_allocs() == 1);
  jn_buf* much_bigger = pool.alloc(5000);  // does not fit the cached one: a new heap buffer
  CHECK(pool.oversize_allocs() == 2);
  pool.unref(again);
  pool.unref(much_bigger);
  CHECK(pool.outstanding() == 0);

  // Exactly buffer_size is still a pool slot.
  jn_buf* edge = pool.alloc(256);
  CHECK(pool.oversize_allocs() == 2);
  CHECK(edge->tailroom == 0);
  pool.unref(edge);
}

TEST_CASE("an exhausted pool returns nullptr and counts it") {
  BufferPool pool(small_pool(4, 0));
  CHECK(pool.capacity_buffers() == 0);
  std::vector<jn_buf*> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(pool.alloc(10));
    REQUIRE(held.back());
  }
  CHECK(pool.capacity_buffers() == 4);
  CHECK(pool.alloc(10) == nullptr);
  CHECK(pool.alloc(10) == nullptr);
  CHECK(pool.exhausted_count() == 2);
  pool.unref(held.back());
  held.pop_back();
  jn_buf* b = pool.alloc(10);
  CHECK(b != nullptr);
  held.push_back(b);
  CHECK(pool.exhausted_count() == 2);
  for (jn_buf* h : held) pool.unref(h);
}

// --- giving idle slabs back (the soak's RSS step: a reload hold grew the pool for good) ---------

namespace {
// The trim's clock in these tests: moved by hand, so nothing depends on elapsed time.
uint64_t fake_now_ms = 0;
uint64_t fake_clock() { return fake_now_ms; }

// interval 0: only explicit trim() calls free anything.
BufferPool::Config trim_pool(size_t prealloc = 64, size_t keep_free = 0, uint32_t interval_ms = 0) {
  BufferPool::Config c = small_pool(8192, prealloc);
  c.trim_keep_free = keep_free;
  c.trim_interval_ms = interval_ms;
  c.clock_ms = fake_clock;
  return c;
}
std::vector<jn_buf*> take(BufferPool& pool, size_t n) {
  std::vector<jn_buf*> v;
  for (size_t i = 0; i < n; ++i) {
    v.push_back(pool.alloc(100));
    REQUIRE(v.back() != nullptr);
  }
  return v;
}
}  // namespace

TEST_CASE("trim frees every idle slab down to prealloc; a buffer still held keeps its slab") {
  BufferPool pool(trim_pool());
  const size_t floor_bytes = pool.bytes_reserved();
  REQUIRE(pool.capacity_buffers() == 64);
  auto bufs = take(pool, 2000);
  const size_t grown = pool.capacity_buffers();
  REQUIRE(pool.slab_count() > 4);
  REQUIRE(grown >= 2000);
  // The last one allocated lives in the newest slab; it stays referenced through the trim.
  jn_buf* held = bufs.back();
  bufs.pop_back();
  std::memset(held->data, 0x5a, held->len);
  for (jn_buf* b : bufs) BufferPool::unref(b);
  CHECK(pool.outstanding() == 1);

  size_t freed = pool.trim(0);
  CHECK(freed > 0);
  CHECK(pool.slab_count() == 2);  // the prealloc slab and the held buffer's
  CHECK(pool.capacity_buffers() == grown - freed);
  CHECK(pool.capacity_buffers() > 64);
  for (uint32_t i = 0; i < held->len; ++i) REQUIRE(held->data[i] == 0x5a);  // untouched (ASan: not freed)

  BufferPool::unref(held);
  CHECK(pool.trim(0) > 0);
  CHECK(pool.capacity_buffers() == 64);
  CHECK(pool.slab_count() == 1);
  CHECK(pool.bytes_reserved() == floor_bytes);
  CHECK(pool.buffers_trimmed() == grown - 64);
  CHECK(pool.trim(0) == 0);  // the prealloc slab is the floor
  // Still a working pool: it grows again on demand.
  bufs = take(pool, 300);
  CHECK(pool.capacity_buffers() >= 300);
  for (jn_buf* b : bufs) BufferPool::unref(b);
  CHECK(pool.outstanding() == 0);
}

TEST_CASE("after a burst, allocation comes from the oldest slab so the newer ones drain") {
  BufferPool pool(trim_pool());
  auto burst = take(pool, 2000);
  for (jn_buf* b : burst) BufferPool::unref(b);  // released in allocation order (a replay)
  // A steady working set afterwards: with one LIFO free list it would be the slots released
  // last (the newest slab's), pinning that slab for good.
  auto steady = take(pool, 40);
  for (int round = 0; round < 100; ++round) {
    BufferPool::unref(steady[round % 40]);
    steady[round % 40] = pool.alloc(100);
    REQUIRE(steady[round % 40] != nullptr);
  }
  CHECK(pool.trim(0) > 0);
  CHECK(pool.slab_count() == 1);
  CHECK(pool.capacity_buffers() == 64);
  CHECK(pool.outstanding() == 40);
  for (jn_buf* b : steady) BufferPool::unref(b);
}

TEST_CASE("trim keeps at least the slots asked for") {
  BufferPool pool(trim_pool(64));
  auto bufs = take(pool, 2000);
  for (jn_buf* b : bufs) BufferPool::unref(b);
  pool.trim(500);
  CHECK(pool.capacity_buffers() >= 500);
  CHECK(pool.capacity_buffers() < 1000);  // slab-granular: a little above 500, not the 2000 grown
}

TEST_CASE("maybe_trim keeps what the last interval needed at its peak, then gives it back") {
  fake_now_ms = 10'000;
  BufferPool pool(trim_pool(64, 0, 1000));
  CHECK(pool.maybe_trim() == 0);  // opens the first window
  auto bufs = take(pool, 2000);
  for (jn_buf* b : bufs) BufferPool::unref(b);
  const size_t grown = pool.capacity_buffers();
  fake_now_ms = 10'500;
  CHECK(pool.maybe_trim() == 0);  // the window is not over
  // The window saw 2000 in use at once: all of it stays for the next interval.
  fake_now_ms = 11'000;
  CHECK(pool.maybe_trim() == 0);
  CHECK(pool.capacity_buffers() == grown);
  // A quiet window (a few buffers at a time) gives back everything above the floor.
  for (int i = 0; i < 10; ++i) BufferPool::unref(pool.alloc(100));
  fake_now_ms = 12'000;
  CHECK(pool.maybe_trim() == grown - 64);
  CHECK(pool.capacity_buffers() == 64);
  CHECK(pool.slabs_trimmed() > 0);
}

TEST_CASE("maybe_trim keeps trim_keep_free spare slots above the interval's peak") {
  fake_now_ms = 0;
  BufferPool pool(trim_pool(64, 700, 1000));
  pool.maybe_trim();
  auto bufs = take(pool, 2000);
  for (jn_buf* b : bufs) BufferPool::unref(b);
  fake_now_ms = 1000;
  pool.maybe_trim();  // the burst's window
  auto steady = take(pool, 100);
  fake_now_ms = 2000;
  CHECK(pool.maybe_trim() > 0);
  CHECK(pool.capacity_buffers() >= 800);  // peak 100 + 700 spare
  CHECK(pool.capacity_buffers() < 2000);
  for (jn_buf* b : steady) BufferPool::unref(b);
}

TEST_CASE("buffers released on another thread and not yet reclaimed keep their slab") {
  BufferPool pool(trim_pool());
  auto bufs = take(pool, 1000);
  std::thread other([&] {
    for (jn_buf* b : bufs) BufferPool::unref(b);
  });
  other.join();
  CHECK(pool.trim(0) == 0);  // all of them on the remote list: every slab still "in use"
  CHECK(pool.capacity_buffers() >= 1000);
  pool.reclaim_remote();
  CHECK(pool.trim(0) > 0);
  CHECK(pool.capacity_buffers() == 64);
}

TEST_CASE("trim_interval_ms = 0 never trims by itself") {
  fake_now_ms = 0;
  BufferPool pool(trim_pool(64, 0, 0));
  auto bufs = take(pool, 1000);
  for (jn_buf* b : bufs) BufferPool::unref(b);
  const size_t grown = pool.capacity_buffers();
  CHECK(pool.maybe_trim() == 0);
  fake_now_ms = 1'000'000;
  CHECK(pool.maybe_trim() == 0);
  CHECK(pool.reclaim_remote() == 0);
  CHECK(pool.capacity_buffers() == grown);
}

TEST_CASE("the pool trims by itself from its releases and from reclaim_remote (no timer of its own)") {
  fake_now_ms = 0;
  BufferPool pool(trim_pool(64, 0, 1000));
  pool.maybe_trim();  // the window opens at t = 0, before the burst
  auto bufs = take(pool, 2000);
  for (jn_buf* b : bufs) BufferPool::unref(b);
  const size_t grown = pool.capacity_buffers();
  REQUIRE(grown >= 2000);
  auto traffic = [&](uint32_t packets) {
    for (uint32_t i = 0; i < packets; ++i) BufferPool::unref(pool.alloc(100));
  };
  fake_now_ms = 1000;
  traffic(BufferPool::kTrimCheckEvery);  // closes the burst's window: everything stays
  CHECK(pool.capacity_buffers() == grown);
  fake_now_ms = 2000;
  traffic(BufferPool::kTrimCheckEvery);  // a quiet window: one check within these releases trims
  CHECK(pool.capacity_buffers() == 64);
  // A media loop's inbox wake (reclaim_remote) runs the same check.
  bufs = take(pool, 2000);
  for (jn_buf* b : bufs) BufferPool::unref(b);
  fake_now_ms = 3000;
  pool.reclaim_remote();
  fake_now_ms = 4000;
  CHECK(pool.capacity_buffers() > 64);
  pool.reclaim_remote();
  CHECK(pool.capacity_buffers() == 64);
}

TEST_CASE("copy makes a private copy and is the only thing counted as a payload copy") {
  BufferPool pool(small_pool());
  jn_buf* b = pool.alloc(64);
  for (uint32_t i = 0; i < b->len; ++i) b->data[i] = static_cast<uint8_t>(i);
  b->data -= 8;  // a prepended header moves data into the headroom
  b->len += 8;
  b->headroom -= 8;
  b->flags = JN_BUF_RTCP | JN_BUF_MEDIA;
  b->rx_ns = 7;
  b->dst.family = 4;
  b->dst.port = 5060;
  b->meta.pts = 123456789012LL;
  b->meta.dts = 123456780000LL;
  b->meta.clock_rate = 90000;
  b->meta.codec = JN_CODEC_H265;
  b->meta.frame_flags = JN_MF_KEY | JN_MF_CONFIG;
  b->meta.seq = 77;
  b->meta.track = 1;
  b->meta.kind = JN_MEDIA_VIDEO;
  pool.ref(b);
  pool.unref(b);
  CHECK(pool.payload_copies() == 0);

  jn_buf* c = pool.copy(b);
  REQUIRE(c);
  CHECK(c != b);
  CHECK(pool.payload_copies() == 1);
  CHECK(c->headroom == b->headroom);
  CHECK(c->len == b->len);
  CHECK(std::memcmp(c->data, b->data, b->len) == 0);
  CHECK(c->flags == (JN_BUF_RTCP | JN_BUF_MEDIA));
  CHECK(c->rx_ns == 7);
  CHECK(c->dst.port == 5060);
  CHECK(std::memcmp(&c->meta, &b->meta, sizeof(jn_media_meta)) == 0);  // media metadata travels with the copy
  CHECK_FALSE(pool.is_shared(c));
  CHECK_FALSE(pool.is_shared(b));  // copying does not take a reference on the source
  c->data[0] ^= 0xff;
  CHECK(c->data[0] != b->data[0]);
  pool.unref(c);
  pool.unref(b);

  // An oversize source is copied into an oversize buffer.
  jn_buf* big = pool.alloc(600);
  jn_buf* big_copy = pool.copy(big);
  REQUIRE(big_copy);
  CHECK(big_copy->len == 600);
  CHECK(pool.oversize_allocs() == 2);
  CHECK(pool.payload_copies() == 2);
  pool.unref(big_copy);
  pool.unref(big);
  CHECK(pool.outstanding() == 0);
}

// ------------------------------------------------------------------------------------------
// PacketBus
// ------------------------------------------------------------------------------------------

TEST_CASE("fan-out hands every sink the same buffer, shared, with no payload copy") {
  BufferPool pool(small_pool());
  PacketBus bus;
  std::vector<RecordingSink> sinks(16);
  for (size_t i = 0; i < sinks.size(); ++i) {
    sinks[i].pool = &pool;
    CHECK(bus.subscribe("cam/1", &sinks[i], 100 + i) != 0);
  }
  jn_buf* b = pool.alloc(160);
  CHECK(bus.publish("cam/1", b) == 16);
  for (size_t i = 0; i < sinks.size(); ++i) {
    REQUIRE(sinks[i].bufs.size() == 1);
    CHECK(sinks[i].bufs[0] == b);
    CHECK(sinks[i].cookies[0] == 100 + i);
    CHECK(sinks[i].shared[0]);  // the bus holds a ref during fan-out: read-only for sinks
  }
  CHECK(pool.payload_copies() == 0);
  CHECK_FALSE(pool.is_shared(b));  // the bus's ref is gone afterwards
  pool.unref(b);
  CHECK(pool.outstanding() == 0);
}

TEST_CASE("a sink that refs the buffer keeps it alive after the publisher lets go") {
  BufferPool pool(small_pool());
  PacketBus bus;
  RecordingSink keeper;
  keeper.action = [&](uint64_t, jn_buf* buf) { pool.ref(buf); };
  bus.subscribe("s", &keeper, 0);
  jn_buf* b = pool.alloc(10);
  bus.publish("s", b);
  pool.unref(b);
  CHECK(pool.outstanding() == 1);
  pool.unref(keeper.bufs[0]);
  CHECK(pool.outstanding() == 0);
}

TEST_CASE("unsubscribe during fan-out") {
  BufferPool pool(small_pool());
  PacketBus bus;
  RecordingSink a, b, c;
  uint64_t sub_a = bus.subscribe("s", &a, 1);
  uint64_t sub_b = bus.subscribe("s", &b, 2);
  uint64_t sub_c = bus.subscribe("s", &c, 3);
  jn_buf* buf = pool.alloc(10);

  SUBCASE("a sink removes a later one: it gets nothing from the same fan-out") {
    a.action = [&](uint64_t, jn_buf*) { CHECK(bus.unsubscribe(sub_c)); };
    CHECK(bus.publish("s", buf) == 2);
    CHECK(a.bufs.size() == 1);
    CHECK(b.bufs.size() == 1);
    CHECK(c.bufs.empty());
    a.action = nullptr;
    CHECK(bus.publish("s", buf) == 2);
    CHECK(c.bufs.empty());
  }
  SUBCASE("a sink removes itself and an earlier one") {
    b.action = [&](uint64_t self, jn_buf*) {
      CHECK(self == sub_b);
      CHECK(bus.unsubscribe(self));
      CHECK(bus.unsubscribe(sub_a));
      CHECK_FALSE(bus.unsubscribe(sub_a));  // already gone
    };
    CHECK(bus.publish("s", buf) == 3);
    CHECK(bus.publish("s", buf) == 1);
    CHECK(a.bufs.size() == 1);
    CHECK(b.bufs.size() == 1);
    CHECK(c.bufs.size() == 2);
    CHECK(bus.subscription_count() == 1);
  }
  SUBCASE("the last subscribers leave mid fan-out: the stream goes once the fan-out ends") {
    a.action = [&](uint64_t, jn_buf*) {
      CHECK(bus.unsubscribe_all(&a) == 1);
      bus.unsubscribe(sub_b);
      bus.unsubscribe(sub_c);
      CHECK(bus.stream_count() == 1);  // still being iterated
    };
    CHECK(bus.publish("s", buf) == 1);
    CHECK(bus.stream_count() == 0);
    CHECK(bus.publish("s", buf) == 0);
    CHECK(bus.unrouted_packets() == 1);
  }
  pool.unref(buf);
  CHECK(pool.outstanding() == 0);
}

TEST_CASE("subscribe during fan-out: the newcomer starts with the next packet") {
  BufferPool pool(small_pool());
  PacketBus bus;
  std::vector<RecordingSink> late(40);  // enough appends to force the vector to reallocate
  RecordingSink first;
  first.action = [&](uint64_t, jn_buf*) {
    if (first.bufs.size() == 1)
      for (auto& s : late) bus.subscribe("s", &s, 9);
  };
  bus.subscribe("s", &first, 1);
  jn_buf* buf = pool.alloc(10);
  CHECK(bus.publish("s", buf) == 1);
  for (auto& s : late) CHECK(s.bufs.empty());
  CHECK(bus.publish("s", buf) == 41);
  for (auto& s : late) CHECK(s.bufs.size() == 1);
  pool.unref(buf);
}

TEST_CASE("publish from inside a sink") {
  BufferPool pool(small_pool());
  PacketBus bus;
  RecordingSink relay, out1, out2, tail;
  relay.action = [&](uint64_t, jn_buf* in) {
    // Re-publish by reference on another stream (a mixer/relay), and subscribe a new stream
    // from inside, which grows the bus's stream table.
    CHECK(bus.publish("out", in) == 2);
    bus.subscribe("new-stream-" + std::to_string(relay.bufs.size()), &tail, 0);
  };
  bus.subscribe("in", &relay, 0);
  bus.subscribe("out", &out1, 0);
  bus.subscribe("out", &out2, 0);
  jn_buf* buf = pool.alloc(10);
  CHECK(bus.publish("in", buf) == 1);
  CHECK(bus.publish("in", buf) == 1);
  CHECK(out1.bufs.size() == 2);
  CHECK(out2.bufs.size() == 2);
  CHECK(out1.bufs[0] == buf);
  CHECK(bus.stream_count() == 4);
  CHECK(pool.payload_copies() == 0);

  SUBCASE("recursive publish on the same stream") {
    RecordingSink echo;
    echo.action = [&](uint64_t, jn_buf* in) {
      if (echo.bufs.size() < 3) bus.publish("loop", in);
    };
    bus.subscribe("loop", &echo, 0);
    RecordingSink quitter;
    uint64_t q = bus.subscribe("loop", &quitter, 0);
    quitter.action = [&](uint64_t, jn_buf*) { bus.unsubscribe(q); };
    CHECK(bus.publish("loop", buf) == 1);  // the outermost fan-out only reached echo
    CHECK(echo.bufs.size() == 3);
    // The innermost fan-out reaches quitter first; once it has left, the two outer fan-outs
    // still in progress skip it.
    CHECK(quitter.bufs.size() == 1);
    PacketBus::StreamStats st;
    REQUIRE(bus.stream_stats("loop", st));
    CHECK(st.subscribers == 1);
    CHECK(st.packets == 3);
    CHECK(st.deliveries == 4);
  }
  pool.unref(buf);
}

TEST_CASE("interned streams survive without subscribers until released") {
  BufferPool pool(small_pool());
  PacketBus bus;
  uint32_t id = bus.intern("cam/7");
  CHECK(id != 0);
  CHECK(bus.intern("cam/7") == id);
  CHECK(bus.stream_count() == 1);
  jn_buf* buf = pool.alloc(100);
  CHECK(bus.publish(id, buf) == 0);

  RecordingSink s;
  uint64_t sub = bus.subscribe("cam/7", &s, 5);
  CHECK(bus.publish(id, buf) == 1);
  CHECK(s.bufs.size() == 1);
  bus.unsubscribe(sub);
  CHECK(bus.stream_count() == 1);  // pinned twice
  bus.release(id);
  CHECK(bus.stream_count() == 1);
  PacketBus::StreamStats st;
  REQUIRE(bus.stream_stats("cam/7", st));
  CHECK(st.packets == 2);
  CHECK(st.bytes == 200);
  CHECK(st.deliveries == 1);
  CHECK(st.subscribers == 0);
  bus.release(id);
  CHECK(bus.stream_count() == 0);
  CHECK_FALSE(bus.stream_stats("cam/7", st));
  CHECK(bus.publish(id, buf) == 0);  // stale id: nothing, counted
  CHECK(bus.unrouted_packets() == 1);
  pool.unref(buf);
}

TEST_CASE("bad arguments are refused") {
  PacketBus bus;
  RecordingSink s;
  CHECK(bus.subscribe("", &s, 0) == 0);
  CHECK(bus.subscribe("x", nullptr, 0) == 0);
  CHECK_FALSE(bus.unsubscribe(12345));
  CHECK(bus.intern("") == 0);
  CHECK(bus.publish(uint32_t{0}, nullptr) == 0);
  CHECK(bus.stream_count() == 0);
}

TEST_CASE("to_json lists streams with their counters") {
  BufferPool pool(small_pool());
  PacketBus bus;
  RecordingSink s1, s2;
  bus.subscribe("b-stream", &s1, 0);
  bus.subscribe("b-stream", &s2, 0);
  bus.subscribe("a-stream", &s1, 0);
  jn_buf* buf = pool.alloc(160);
  bus.publish("b-stream", buf);
  bus.publish("b-stream", buf);
  bus.publish("nowhere", buf);
  pool.unref(buf);

  nlohmann::json j = bus.to_json();
  REQUIRE(j["streams"].size() == 2);
  CHECK(j["streams"][0]["name"] == "a-stream");
  CHECK(j["streams"][0]["packets"] == 0);
  CHECK(j["streams"][0]["subscribers"] == 1);
  const auto& b = j["streams"][1];
  CHECK(b["name"] == "b-stream");
  CHECK(b["subscribers"] == 2);
  CHECK(b["packets"] == 2);
  CHECK(b["bytes"] == 320);
  CHECK(b["deliveries"] == 4);
  CHECK(b["pinned"] == false);
  CHECK(j["subscriptions"] == 3);
  CHECK(j["unrouted_packets"] == 1);
  CHECK(j["deliveries"] == 4);

  CHECK(bus.unsubscribe_all(&s1) == 2);
  j = bus.to_json();
  REQUIRE(j["streams"].size() == 1);
  CHECK(j["streams"][0]["subscribers"] == 1);
}

// ------------------------------------------------------------------------------------------
// Addresses and zero-copy send
// ------------------------------------------------------------------------------------------

TEST_CASE("parse_addr / format_addr round trips") {
  for (const char* text : {"1.2.3.4:5", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:5",
                           "[2001:db8::1]:5060", "[::]:0", "[::ffff:1.2.3.4]:80", "[fe80::1%2]:5060"}) {
    jn_addr a{};
    INFO(text);
    REQUIRE(parse_addr(text, a));
    CHECK(format_addr(a) == text);
  }
  jn_addr a{};
  REQUIRE(parse_addr("10.0.0.1:8000", a));
  CHECK(a.family == 4);
  CHECK(a.port == 8000);
  CHECK(a.ip[0] == 10);
  CHECK(a.ip[3] == 1);
  REQUIRE(parse_addr("[::1]:9", a));
  CHECK(a.family == 6);
  CHECK(a.ip[15] == 1);
  CHECK(format_addr(jn_addr{}) == "");
  // An IPv6 zone by interface name becomes its index; loopback is "lo" on Linux.
  REQUIRE(parse_addr("[fe80::1%lo]:9", a));
  CHECK(a.scope_id == if_nametoindex("lo"));
  CHECK(a.scope_id != 0);
}

TEST_CASE("parse_addr rejects malformed text and leaves the output alone") {
  for (const char* text :
       {"1.2.3.4", "1.2.3.4:70000", "[::1", "abc:1", "", ":5", "1.2.3.4:", "1.2.3.4:-1",
        "1.2.3.4:+5", "1.2.3.4: 5", " 1.2.3.4:5", "1.2.3.4:5x", "1.2.3:5", "256.1.1.1:5",
        "::1:5", "[::1]5", "[::1]:", "[1.2.3.4]:5", "[]:5", "[::1]:99999", "1.2.3.4:123456",
        "[fe80::1%]:5", "[fe80::1%no-such-if0]:5", "1.2.3.4%1:5"}) {
    INFO(text);
    jn_addr a{};
    a.family = 9;
    CHECK_FALSE(parse_addr(text, a));
    CHECK(a.family == 9);
  }
}

TEST_CASE("sockaddr conversions round trip") {
  for (const char* text : {"192.168.1.20:5004", "[fe80::1:2]:6000", "[fe80::1:2%3]:6000"}) {
    INFO(text);
    jn_addr a{};
    REQUIRE(parse_addr(text, a));
    sockaddr_storage ss{};
    socklen_t len = 0;
    REQUIRE(to_sockaddr(a, ss, len));
    if (a.family == 4) {
      CHECK(len == sizeof(sockaddr_in));
      CHECK(reinterpret_cast<sockaddr_in&>(ss).sin_port == htons(5004));
    } else {
      CHECK(len == sizeof(sockaddr_in6));
    }
    jn_addr back = from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    CHECK(format_addr(back) == text);
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  CHECK_FALSE(to_sockaddr(jn_addr{}, ss, len));
  CHECK(from_sockaddr(nullptr).family == 0);
  ss.ss_family = AF_UNIX;
  CHECK(from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).family == 0);
}

TEST_CASE("fill_msghdr points at the payload instead of copying it") {
  BufferPool pool(small_pool());
  jn_buf* buf = pool.alloc(172);
  for (uint32_t i = 0; i < buf->len; ++i) buf->data[i] = static_cast<uint8_t>(i);
  uint8_t head[12] = {0x80, 0, 0, 1, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef};

  jn_send item{};
  REQUIRE(parse_addr("127.0.0.1:9", item.to));
  item.head = head;
  item.head_len = sizeof head;
  item.buf = buf;
  item.buf_offset = 12;

  sockaddr_storage sa;
  iovec iov[2];
  msghdr msg;
  REQUIRE(fill_msghdr(item, sa, iov, msg) == 2);
  CHECK(iov[0].iov_base == head);
  CHECK(iov[0].iov_len == 12);
  CHECK(iov[1].iov_base == buf->data + 12);
  CHECK(iov[1].iov_len == 160);
  CHECK(msg.msg_iov == iov);
  CHECK(msg.msg_iovlen == 2);
  CHECK(msg.msg_name == &sa);
  CHECK(msg.msg_namelen == sizeof(sockaddr_in));

  SUBCASE("no head: one iovec") {
    item.head = nullptr;
    CHECK(fill_msghdr(item, sa, iov, msg) == 1);
    CHECK(iov[0].iov_base == buf->data + 12);
  }
  SUBCASE("offset at the end: only the head") {
    item.buf_offset = buf->len;
    CHECK(fill_msghdr(item, sa, iov, msg) == 1);
    CHECK(iov[0].iov_base == head);
  }
  SUBCASE("bad items") {
    item.buf_offset = buf->len + 1;
    CHECK(fill_msghdr(item, sa, iov, msg) == -1);
    item.buf_offset = 0;
    item.to.family = 0;
    CHECK(fill_msghdr(item, sa, iov, msg) == -1);
    REQUIRE(parse_addr("127.0.0.1:0", item.to));
    CHECK(fill_msghdr(item, sa, iov, msg) == -1);
  }
  pool.unref(buf);
}

TEST_CASE("a fill_msghdr datagram arrives as head + payload tail over loopback") {
  int rx = socket(AF_INET, SOCK_DGRAM, 0);
  int tx = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(rx >= 0);
  REQUIRE(tx >= 0);
  sockaddr_in bind_addr{};
  bind_addr.sin_family = AF_INET;
  bind_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(rx, reinterpret_cast<sockaddr*>(&bind_addr), sizeof bind_addr) == 0);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  REQUIRE(getsockname(rx, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0);

  BufferPool pool(small_pool());
  jn_buf* buf = pool.alloc(40);
  for (uint32_t i = 0; i < buf->len; ++i) buf->data[i] = static_cast<uint8_t>(100 + i);
  const uint8_t head[4] = {1, 2, 3, 4};
  jn_send item{};
  item.to = from_sockaddr(reinterpret_cast<sockaddr*>(&bound));
  item.head = head;
  item.head_len = 4;
  item.buf = buf;
  item.buf_offset = 30;

  sockaddr_storage sa;
  iovec iov[2];
  msghdr msg;
  REQUIRE(fill_msghdr(item, sa, iov, msg) == 2);
  CHECK(sendmsg(tx, &msg, 0) == 14);
  uint8_t got[64];
  REQUIRE(recv(rx, got, sizeof got, 0) == 14);
  CHECK(std::memcmp(got, head, 4) == 0);
  CHECK(std::memcmp(got + 4, buf->data + 30, 10) == 0);
  pool.unref(buf);
  close(rx);
  close(tx);
}

TEST_CASE("a media loop's hand-off to the control loop is bounded, and drops are counted") {
  // A loop that never ran: handoff() only queues (the control side takes the queue).
  MediaLoop loop(1, -1, BufferPoolConfig{});
  jn_buf* b = loop.pool().alloc(100);
  REQUIRE(b);
  size_t accepted = 0;
  for (size_t i = 0; i < MediaLoop::kMaxHandoffs + 10; ++i) accepted += loop.handoff(7, {}, b) ? 1 : 0;
  CHECK(accepted == MediaLoop::kMaxHandoffs);
  CHECK(loop.stats().handoff_dropped.load() == 10);
  CHECK(loop.stats().bus_handoffs.load() == MediaLoop::kMaxHandoffs);
  std::vector<MediaLoop::Handoff> taken;
  loop.take_handoffs(taken);
  REQUIRE(taken.size() == MediaLoop::kMaxHandoffs);
  for (auto& h : taken) BufferPool::unref(h.buf);  // each hand-off held one reference
  CHECK_FALSE(loop.pool().is_shared(b));            // a dropped one took none
  CHECK(loop.handoff(7, {}, b));                    // room again once the control loop took them
  loop.take_handoffs(taken);
  for (auto& h : taken) BufferPool::unref(h.buf);
  BufferPool::unref(b);
  CHECK(loop.pool().outstanding() == 0);
}
