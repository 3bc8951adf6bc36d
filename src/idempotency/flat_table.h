// FlatTable: the in-process store's hash table, from string keys to entries.
//
// Open addressing with linear probing over an array of slots, each holding a
// key's full hash, a stamp and a pointer to its node (entry and key, one
// allocation). A lookup reads the slots, which sit side by side, and touches a
// node only when the hash matches; growing moves slots without touching a node.
// The stamp is a 64-bit value the owner keeps beside the hash so that scans can
// read it without touching nodes: the store keeps each entry's expiry there,
// and its sweep reads slots only. std::unordered_map walks a linked list
// instead (bucket, previous node, node, key) and rehashes by visiting every
// node: on this store's millions of keys each of those is a cache miss, and
// they were most of the gateway's time in the store.
//
// Erasing shifts the entries that follow back (no tombstones), so a slot's
// entry may move when another is erased. Slots are addressed by index:
// find() and insert() return one; it stays valid until the next insert or
// erase. Not thread safe: the store locks around it.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/assert.h"

namespace settle::idempotency {

// Allocates large arrays (2 MiB and up) straight from mmap and asks the
// kernel to back them with transparent huge pages (madvise: the mode most
// distributions default to). A lookup in a table of millions of keys lands
// on a random slot: with 4 KiB pages nearly every one is a TLB miss, and
// under virtualisation a TLB miss walks two page tables. With 2 MiB pages the
// slots of a 10M-entry table (340-690 MB) span a few hundred pages instead
// of about a hundred thousand. Smaller arrays come from operator new.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr std::size_t kHuge = std::size_t{2} << 20;

  HugePageAllocator() = default;
  template <typename U>
  explicit HugePageAllocator(const HugePageAllocator<U>& /*other*/) {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHuge) return static_cast<T*>(::operator new(bytes));
    // Round up to whole huge pages; the kernel aligns nothing for us, so
    // ask for one more and use the aligned part (the rest is returned).
    const std::size_t size = (bytes + kHuge - 1) & ~(kHuge - 1);
    void* p = ::mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    auto* base = static_cast<char*>(p);
    char* aligned = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(base) + kHuge - 1) & ~(kHuge - 1));
    if (aligned > base) ::munmap(base, static_cast<std::size_t>(aligned - base));
    if (char* end = aligned + size; end < base + size + kHuge) {
      ::munmap(end, static_cast<std::size_t>(base + size + kHuge - end));
    }
    (void)::madvise(aligned, size, MADV_HUGEPAGE);  // advice: without it, 4 KiB pages still work
    return reinterpret_cast<T*>(aligned);
  }

  void deallocate(T* p, std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHuge) return ::operator delete(p);
    ::munmap(p, (bytes + kHuge - 1) & ~(kHuge - 1));
  }

  template <typename U>
  bool operator==(const HugePageAllocator<U>& /*other*/) const {
    return true;
  }
};

template <typename Entry>
class FlatTable {
 public:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  // The slot holding `key` (whose hash is `hash`), or npos.
  std::size_t find(std::string_view key, std::uint64_t hash) const {
    if (slots_.empty()) return npos;
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.node) return npos;
      if (s.hash == hash && s.node->key() == key) return i;
    }
  }

  // Adds `key`, which must be absent, with its stamp; returns its slot.
  std::size_t insert(std::string_view key, std::uint64_t hash, Entry entry, std::int64_t stamp = 0) {
    if ((size_ + 1) * kLoadDen > slots_.size() * kLoadNum) grow();
    std::size_t i = hash & mask_;
    while (slots_[i].node) i = (i + 1) & mask_;
    slots_[i].hash = hash;
    slots_[i].stamp = stamp;
    slots_[i].node.reset(make_node(key, std::move(entry)));
    ++size_;
    return i;
  }

  // Removes the entry in `slot`. Entries that probed past it move back so
  // that every entry stays reachable from its home slot.
  void erase(std::size_t slot) {
    SETTLE_ASSERT(occupied(slot), "FlatTable::erase of an empty slot");
    slots_[slot].node.reset();
    --size_;
    std::size_t hole = slot;
    for (std::size_t j = (hole + 1) & mask_; slots_[j].node; j = (j + 1) & mask_) {
      const std::size_t home = slots_[j].hash & mask_;
      // The entry at j may fill the hole unless its home lies cyclically in
      // (hole, j]: then it would sit before its home and not be found.
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (stays) continue;
      slots_[hole] = std::move(slots_[j]);
      hole = j;
    }
  }

  bool occupied(std::size_t slot) const { return static_cast<bool>(slots_[slot].node); }
  std::string_view key_at(std::size_t slot) const { return slots_[slot].node->key(); }
  Entry& at(std::size_t slot) { return slots_[slot].node->entry; }
  const Entry& at(std::size_t slot) const { return slots_[slot].node->entry; }
  std::int64_t stamp(std::size_t slot) const { return slots_[slot].stamp; }
  void set_stamp(std::size_t slot, std::int64_t stamp) { slots_[slot].stamp = stamp; }
  std::size_t size() const { return size_; }
  // Slots, occupied or not (a power of two, or 0 before the first insert).
  std::size_t capacity() const { return slots_.size(); }

 private:
  // The entry, then the key's bytes in the same allocation: one allocation
  // an entry, and no second cache miss for a key compare.
  struct Node {
    Entry entry;
    std::uint32_t key_size;
    std::string_view key() const { return {reinterpret_cast<const char*>(this + 1), key_size}; }
  };
  struct NodeDelete {
    void operator()(Node* node) const {
      node->~Node();
      ::operator delete(node);
    }
  };
  static Node* make_node(std::string_view key, Entry&& entry) {
    SETTLE_ASSERT(key.size() <= UINT32_MAX, "FlatTable: a key of 4 GiB or more");
    void* memory = ::operator new(sizeof(Node) + key.size());
    Node* node = new (memory) Node{std::move(entry), static_cast<std::uint32_t>(key.size())};
    if (!key.empty()) std::memcpy(reinterpret_cast<char*>(node + 1), key.data(), key.size());
    return node;
  }
  struct Slot {
    std::uint64_t hash = 0;
    std::int64_t stamp = 0;
    std::unique_ptr<Node, NodeDelete> node;  // null: empty
  };
  // At most 7 entries per 10 slots: probes stay short while the slots cost
  // 34-69 bytes an entry.
  static constexpr std::size_t kLoadNum = 7;
  static constexpr std::size_t kLoadDen = 10;
  static constexpr std::size_t kMinSlots = 16;

  void grow() {
    Slots old = std::exchange(slots_, Slots(slots_.empty() ? kMinSlots : slots_.size() * 2));
    mask_ = slots_.size() - 1;
    for (Slot& s : old) {
      if (!s.node) continue;
      std::size_t i = s.hash & mask_;
      while (slots_[i].node) i = (i + 1) & mask_;
      slots_[i] = std::move(s);
    }
  }

  using Slots = std::vector<Slot, HugePageAllocator<Slot>>;
  Slots slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace settle::idempotency
