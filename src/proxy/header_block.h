// HeaderBlock: the header fields of one HEADERS block (request headers, response headers or
// trailers), stored back to back in one buffer with an index beside it. A gRPC call's handful of
// headers fits the inline capacity, so relaying them costs no allocation (with one std::string
// per name and value, headers were about a third of the proxy's allocations per call). Owned by
// one stream on one worker thread; not copyable (the buffer may point into the object).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <initializer_list>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/container/inlined_vector.h"

namespace podlb::proxy {

class HeaderBlock {
 public:
  HeaderBlock() = default;
  HeaderBlock(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
    for (const auto& [name, value] : fields) Add(name, value);
  }
  HeaderBlock(const HeaderBlock&) = delete;
  HeaderBlock& operator=(const HeaderBlock&) = delete;

  void Add(std::string_view name, std::string_view value) {
    const size_t needed = size_ + name.size() + value.size();
    if (needed > capacity_) Grow(needed);
    fields_.push_back({size_, static_cast<uint32_t>(name.size()),
                       static_cast<uint32_t>(value.size())});
    std::memcpy(data_ + size_, name.data(), name.size());
    std::memcpy(data_ + size_ + name.size(), value.data(), value.size());
    size_ = static_cast<uint32_t>(needed);
  }
  void Clear() {
    fields_.clear();
    size_ = 0;
  }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  // Views into the block: valid until the next Add or Clear.
  std::string_view name(size_t i) const {
    return {data_ + fields_[i].offset, fields_[i].name_size};
  }
  std::string_view value(size_t i) const {
    return {data_ + fields_[i].offset + fields_[i].name_size, fields_[i].value_size};
  }
  // The value of the first field named `name`, or nullopt.
  std::optional<std::string_view> Find(std::string_view name) const {
    for (size_t i = 0; i < fields_.size(); ++i)
      if (this->name(i) == name) return value(i);
    return std::nullopt;
  }

 private:
  static constexpr uint32_t kInlineBytes = 160;
  struct Field {
    uint32_t offset;  // of the name; the value follows it
    uint32_t name_size;
    uint32_t value_size;
  };

  void Grow(size_t needed) {
    size_t capacity = std::max<size_t>(needed, 2 * size_t{capacity_});
    auto bigger = std::make_unique<char[]>(capacity);
    std::memcpy(bigger.get(), data_, size_);
    heap_ = std::move(bigger);
    data_ = heap_.get();
    capacity_ = static_cast<uint32_t>(capacity);
  }

  char inline_[kInlineBytes];
  std::unique_ptr<char[]> heap_;
  char* data_ = inline_;
  uint32_t size_ = 0;
  uint32_t capacity_ = kInlineBytes;
  absl::InlinedVector<Field, 8> fields_;
};

}  // namespace podlb::proxy
