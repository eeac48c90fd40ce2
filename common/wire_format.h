// Just enough of the protobuf wire format to build and scan messages
// without a message class: weftd's pre-encoded xDS responses and its reading
// of resource_names from raw requests, and the load generator in bench/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace weft::common {

void AppendVarint(std::string& out, uint64_t value);
// A length-delimited field (string, bytes or message); empty values are
// written too (proto3 readers treat them as unset).
void AppendLengthDelimited(std::string& out, int field, std::string_view bytes);

// Walks the fields of one message.
class WireReader {
 public:
  struct Field {
    int number = 0;
    int wire_type = 0;
    std::string_view bytes;  // the payload of a length-delimited field
    uint64_t varint = 0;     // the value of a varint field
    size_t begin = 0;        // offsets of the whole field (tag included)
    size_t end = 0;
  };
  explicit WireReader(std::string_view data) : data_(data) {}
  // False at the end, or when the rest is not valid wire format (malformed()).
  bool Next(Field& field);
  // After Next() returned a length-delimited field numbered `number` (1-15:
  // a one-byte tag), skips the same fields that follow it without
  // returning them: a tight loop for long repeated runs (the thousand
  // resource_names of an Envoy ACK). Sets malformed() on a bad one.
  void SkipRepeated(int number);
  size_t position() const { return pos_; }
  bool malformed() const { return malformed_; }

 private:
  bool Varint(uint64_t& out);
  std::string_view data_;
  size_t pos_ = 0;
  bool malformed_ = false;
};

}  // namespace weft::common
