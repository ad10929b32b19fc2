// Protobuf wire-format pieces written by hand where building a message would cost more than
// the bytes: the ADS response header (ads_stream.cc) and the load client's ACKs (bench/xds).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace podlb::xds {

// Appends the tag and length of field `field` of wire type LEN (a string, bytes or an embedded
// message) whose payload of `size` bytes follows.
inline void AppendLengthDelimitedHeader(int field, size_t size, std::string* out) {
  using google::protobuf::io::CodedOutputStream;
  using google::protobuf::internal::WireFormatLite;
  uint8_t prefix[10];  // a tag and a length, 5 bytes at most each
  uint8_t* end = CodedOutputStream::WriteTagToArray(
      WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), prefix);
  end = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(size), end);
  out->append(reinterpret_cast<const char*>(prefix), static_cast<size_t>(end - prefix));
}

// Appends field `field` of wire type LEN holding `bytes`, as protobuf serializes it.
inline void AppendLengthDelimitedField(int field, std::string_view bytes, std::string* out) {
  AppendLengthDelimitedHeader(field, bytes.size(), out);
  out->append(bytes);
}

// How many bytes AppendLengthDelimitedField writes for field `field` holding `size` bytes.
inline size_t LengthDelimitedFieldSize(int field, size_t size) {
  using google::protobuf::io::CodedOutputStream;
  using google::protobuf::internal::WireFormatLite;
  return CodedOutputStream::VarintSize32(
             WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) +
         CodedOutputStream::VarintSize32(static_cast<uint32_t>(size)) + size;
}

}  // namespace podlb::xds
