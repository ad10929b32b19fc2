// HeaderBlock: the header fields of one HEADERS block (request headers, response headers or
// trailers), stored back to back in one buffer with an index beside it. A gRPC call's handful of
// headers fits the inline capacity, so relaying them costs no allocation (with one std::string
// per name and value, headers were about a third of the proxy's allocations per call). Owned by
// one stream on one worker thread.
#pragma once

#include <cstdint>
#include <initializer_list>
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

  void Add(std::string_view name, std::string_view value) {
    fields_.push_back({static_cast<uint32_t>(bytes_.size()), static_cast<uint32_t>(name.size()),
                       static_cast<uint32_t>(value.size())});
    bytes_.insert(bytes_.end(), name.begin(), name.end());
    bytes_.insert(bytes_.end(), value.begin(), value.end());
  }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  // Views into the block: valid until the next Add.
  std::string_view name(size_t i) const {
    return {bytes_.data() + fields_[i].offset, fields_[i].name_size};
  }
  std::string_view value(size_t i) const {
    return {bytes_.data() + fields_[i].offset + fields_[i].name_size, fields_[i].value_size};
  }

 private:
  struct Field {
    uint32_t offset;  // of the name; the value follows it
    uint32_t name_size;
    uint32_t value_size;
  };
  absl::InlinedVector<char, 192> bytes_;
  absl::InlinedVector<Field, 10> fields_;
};

}  // namespace podlb::proxy
