// junction/util/slots.hpp: generational handles and the free list.
#include <junction/util/slots.hpp>

#include <doctest/doctest.h>

#include <string>

using junction::util::IdPool;
using junction::util::SlotTable;

TEST_CASE("sdk slots: a freed slot is reused and the old handle finds nothing") {
  SlotTable<std::string> t;
  auto a = t.insert("a");
  auto b = t.insert("b");
  REQUIRE(a != 0);
  REQUIRE(b != 0);
  CHECK(*t.get(a) == "a");
  CHECK(*t.get(b) == "b");
  CHECK(t.size() == 2);
  CHECK(t.erase(a));
  CHECK(!t.erase(a));
  CHECK(t.get(a) == nullptr);
  auto c = t.insert("c");
  CHECK(SlotTable<std::string>::index_of(c) == SlotTable<std::string>::index_of(a));  // index reused
  CHECK(c != a);                                                                     // with a new generation
  CHECK(t.get(a) == nullptr);
  CHECK(*t.get(c) == "c");
  CHECK(t.get(0) == nullptr);
  CHECK(t.get(c + (uint64_t{1} << 40)) == nullptr);
}

TEST_CASE("sdk slots: a full table refuses, and an erase makes room") {
  SlotTable<int> t(2);
  auto a = t.insert(1);
  CHECK(t.insert(2) != 0);
  CHECK(t.insert(3) == 0);
  CHECK(t.size() == 2);
  t.erase(a);
  CHECK(t.insert(4) != 0);
}

TEST_CASE("sdk slots: restored values keep their handles, the gaps go on the free list") {
  SlotTable<int> t;
  uint64_t h1 = (uint64_t{7} << 32) | 1, h3 = (uint64_t{9} << 32) | 3;
  CHECK(t.insert_at(h1, 10));
  CHECK(t.insert_at(h3, 30));
  CHECK(!t.insert_at(h3, 31));
  t.rebuild_free_list();
  CHECK(*t.get(h1) == 10);
  CHECK(*t.get(h3) == 30);
  int seen = 0;
  t.for_each([&](uint64_t, int& v) { seen += v; });
  CHECK(seen == 40);
  // Indexes 0 and 2 are free; the next new index is 4.
  uint32_t got[3];
  for (auto& g : got) g = SlotTable<int>::index_of(t.insert(0));
  CHECK(((got[0] == 0 || got[0] == 2) && (got[1] == 0 || got[1] == 2) && got[0] != got[1]));
  CHECK(got[2] == 4);
}

TEST_CASE("sdk slots: IdPool hands out, takes back and rebuilds indexes") {
  IdPool p(3);
  CHECK(p.acquire() == 0u);
  CHECK(p.acquire() == 1u);
  CHECK(p.acquire() == 2u);
  CHECK(!p.acquire());
  p.release(1);
  CHECK(p.acquire() == 1u);
  p.rebuild(5, [](uint32_t i) { return i % 2 == 0; });
  CHECK(p.next() == 5u);
  CHECK(p.free_count() == 2);
}
