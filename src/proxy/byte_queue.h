// ByteQueue: a FIFO of bytes with O(1) amortized pop from the front, for stream bodies waiting
// for a flow-control window. Single-threaded (owned by one stream on one worker).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace podlb::proxy {

class ByteQueue {
 public:
  size_t size() const { return data_.size() - head_; }
  bool empty() const { return size() == 0; }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(data_.data()) + head_; }
  void Append(const uint8_t* bytes, size_t len) {
    if (head_ > 0 && head_ == data_.size()) Clear();
    data_.append(reinterpret_cast<const char*>(bytes), len);
  }
  // Drops `len` bytes from the front; compacts once the dead prefix dominates.
  void Pop(size_t len) {
    head_ += len;
    if (head_ == data_.size()) {
      Clear();
    } else if (head_ > 64 * 1024 && head_ * 2 > data_.size()) {
      data_.erase(0, head_);
      head_ = 0;
    }
  }
  void Clear() {
    data_.clear();
    head_ = 0;
  }

 private:
  std::string data_;
  size_t head_ = 0;
};

}  // namespace podlb::proxy
