// NvArray: the nghttp2_nv view of a HeaderBlock for one submit call. nghttp2 copies the header
// block on submit, so the array lives on the stack for the usual handful of headers and only
// falls back to the heap for long lists. Lives on one thread's stack.
#pragma once

#include <nghttp2/nghttp2.h>

#include <vector>

#include "proxy/upstream_stream.h"

namespace podlb::proxy {

class NvArray {
 public:
  explicit NvArray(const HeaderBlock& headers) : size_(headers.size()) {
    if (size_ > kStack) {
      heap_.resize(size_);
      data_ = heap_.data();
    }
    for (size_t i = 0; i < size_; ++i) {
      std::string_view name = headers.name(i), value = headers.value(i);
      data_[i] = {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                  value.size(), NGHTTP2_NV_FLAG_NONE};
    }
  }
  NvArray(const NvArray&) = delete;
  NvArray& operator=(const NvArray&) = delete;
  const nghttp2_nv* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  static constexpr size_t kStack = 32;
  nghttp2_nv stack_[kStack];
  std::vector<nghttp2_nv> heap_;
  nghttp2_nv* data_ = stack_;
  size_t size_;
};

}  // namespace podlb::proxy
